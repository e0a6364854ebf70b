/* Kept while kv_attn.c, runtime/session.h and kv_state.c still include it:
 * the cache's types and functions are all in kv/kv.h. */
#include "kv/kv.h"
