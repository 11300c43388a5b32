#include <sqlite3.h>

/// `sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0)`: SQLite then keeps no count of the memory it
/// takes, and no longer locks one mutex, shared by every connection in the process, on each of its
/// allocations. Takes effect only before SQLite is initialized (before the first connection opens);
/// afterwards it changes nothing and returns SQLITE_MISUSE. (`sqlite3_config` is variadic, which
/// Swift cannot call.)
static inline int confvault_sqlite3_stop_counting_memory(void) {
  return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
