#ifndef CODISTILL_CZLIB_SHIM_H
#define CODISTILL_CZLIB_SHIM_H
#include <zlib.h>
// inflateInit2 is a macro over inflateInit2_ (it passes the library version and stream size).
static inline int cd_inflate_init_gzip(z_streamp strm) { return inflateInit2(strm, 15 + 32); }
#endif
