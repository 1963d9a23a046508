#include "base/counters.h"

hak_counters_t g_stats;
