#ifndef CDE_CVIPS_SHIM_H
#define CDE_CVIPS_SHIM_H
#include <vips/vips.h>
// Variadic libvips calls and macros are wrapped here as plain functions when Swift needs them.
static inline int cde_vips_init(const char *argv0) { return VIPS_INIT(argv0); }
#endif
