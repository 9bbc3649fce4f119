#include <argon2.h>
#include <malloc.h>

/* Serves allocations of 1 MiB and more (argon2id's 19 MiB per verification) with their own mappings, returned to
   the system when freed. glibc otherwise raises this threshold after the first such free, and later verifications
   leave their 19 MiB in the heap for good. */
static inline void tern_fix_mmap_threshold(void) { mallopt(M_MMAP_THRESHOLD, 1 << 20); }
