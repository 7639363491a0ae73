/*
** tests/test_keyset.c — the rule engine's grow-only negative filter
** (processor/keyset.h): every key added is found through many resizes,
** keys never added are not, for every supported key length.
*/
#include "tests/test.h"
#include "processor/keyset.h"
#include "common/banned.h"

static void key(uint8_t *k, size_t klen, uint32_t i, uint8_t salt)
{
    memset(k, salt, klen);
    memcpy(k + klen - 4, &i, 4); /* differ only in the last bytes: every byte must count */
}

TEST(added_found_others_not)
{
    size_t lens[] = {8, 13, 16, 32};
    for (size_t l = 0; l < 4; l++) {
        size_t klen = lens[l];
        mdw_keyset *s = mdw_keyset_new(klen);
        uint8_t k[MDW_KEYSET_MAX_KEY];
        for (uint32_t i = 0; i < 30000; i++) {
            key(k, klen, i * 2, 0xab);
            mdw_keyset_add(s, k);
            mdw_keyset_add(s, k); /* twice: still one */
        }
        ASSERT_EQ(mdw_keyset_count(s), 30000);
        for (uint32_t i = 0; i < 60000; i++) {
            key(k, klen, i, 0xab);
            ASSERT_EQ(mdw_keyset_has(s, k), i % 2 == 0);
        }
        key(k, klen, 0, 0xac); /* same tail, another prefix */
        ASSERT(!mdw_keyset_has(s, k));
        mdw_keyset_free(s);
    }
}

int main(void)
{
    RUN(added_found_others_not);
    return TEST_REPORT();
}
