/* zlib-compatible CRC-32 (reflected polynomial 0xEDB88320), as the writer's zlib.crc32. */
#include "internal.h"

uint32_t mgc_crc32(const uint8_t *data, size_t n) {
    /* The 1 KB table lives on the stack and is rebuilt per call (~2 µs) so that the
     * runtime keeps no mutable globals; the byte loop then runs at table speed. */
    uint32_t table[256];
    uint32_t c, crc = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < 256; i++) {
        c = (uint32_t)i;
        for (k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (i = 0; i < n; i++) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}
