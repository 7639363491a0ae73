#ifndef MDW_VERSION_H
#define MDW_VERSION_H
#define MDW_VERSION "0.1.0"
#endif
