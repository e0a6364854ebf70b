/* Error messages: one buffer per thread. A failing library call writes its
 * detail here (vkm_fail, or any function given vkm_err_buf()); public calls
 * clear it when they begin; vkmix_context_last_error returns it. Because the
 * buffer is thread-local, no thread ever sees (or overwrites) another
 * thread's message. */
#ifndef VKM_ERROR_H
#define VKM_ERROR_H

#include <stddef.h>

#define VKM_ERR_SIZE 1024

/* The calling thread's message buffer (VKM_ERR_SIZE bytes). */
char *vkm_err_buf(void);
/* A public call begins: forget the calling thread's previous message. */
void vkm_err_clear(void);

#endif
