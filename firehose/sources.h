/*
** firehose/sources.h — queue source ids: the byte each producer stamps on
** the events it appends and the name of its cursor row in the queue's meta
** table. The queue carries the byte without knowing what it means
** (queue/queue.h); this is the one list of what it means, for every
** producer: the firehose clients, the rebuild from PDS records
** (`meadow rebuild`, cmd/cmd_pds.c) and tests.
*/
#ifndef MDW_FIREHOSE_SOURCES_H
#define MDW_FIREHOSE_SOURCES_H

enum {
    MDW_SOURCE_JETSTREAM = 1,
    MDW_SOURCE_RELAY = 2,
    MDW_SOURCE_REBUILD = 3, /* its cursor never touches a firehose source's */
    MDW_SOURCE_TEST = 9
};

#endif
