#ifndef CDE_CVIPS_SHIM_H
#define CDE_CVIPS_SHIM_H
#include <vips/vips.h>
// Variadic libvips calls and macros are wrapped here as plain functions when Swift needs them.
static inline int cde_vips_init(const char *argv0) { return VIPS_INIT(argv0); }

// ---- Imaging module wrappers (Sources/Imaging/ImageCodec.swift) ----
// Each returns 0 on success, -1 on failure (message in vips_error_buffer()).

/// Loads an image from memory; the loader is chosen from the bytes (JPEG, PNG,
/// GIF, TIFF, WebP natively; BMP through libvips' ImageMagick loader).
static inline VipsImage *cde_vips_load_buffer(const void *buf, size_t len) {
  return vips_image_new_from_buffer(buf, len, "", NULL);
}
/// Converts any interpretation (B_W, CMYK, RGB16, LAB...) to 8-bit sRGB, keeping alpha.
static inline int cde_vips_to_srgb(VipsImage *in, VipsImage **out) {
  return vips_colourspace(in, out, VIPS_INTERPRETATION_sRGB, NULL);
}
static inline int cde_vips_extract_bands(VipsImage *in, VipsImage **out, int first, int n) {
  return vips_extract_band(in, out, first, "n", n, NULL);
}
static inline int cde_vips_cast_uchar(VipsImage *in, VipsImage **out) {
  return vips_cast_uchar(in, out, NULL);
}
/// JPEG with 4:2:0 chroma subsampling at every quality (as Pillow/libjpeg default).
static inline int cde_vips_jpegsave(VipsImage *in, void **buf, size_t *len, int q) {
  return vips_jpegsave_buffer(in, buf, len, "Q", q, "subsample_mode", VIPS_FOREIGN_SUBSAMPLE_ON,
                              "strip", TRUE, NULL);
}
static inline int cde_vips_pngsave(VipsImage *in, void **buf, size_t *len, int compression) {
  return vips_pngsave_buffer(in, buf, len, "compression", compression, "strip", TRUE, NULL);
}
static inline int cde_vips_tiffsave(VipsImage *in, void **buf, size_t *len) {
  return vips_tiffsave_buffer(in, buf, len, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_LZW,
                              "strip", TRUE, NULL);
}
static inline int cde_vips_webpsave(VipsImage *in, void **buf, size_t *len, int q) {
  return vips_webpsave_buffer(in, buf, len, "Q", q, "strip", TRUE, NULL);
}
static inline int cde_vips_gifsave(VipsImage *in, void **buf, size_t *len) {
  return vips_gifsave_buffer(in, buf, len, "effort", 1, "strip", TRUE, NULL);
}
static inline int cde_vips_bmpsave(VipsImage *in, void **buf, size_t *len) {
  return vips_magicksave_buffer(in, buf, len, "format", "BMP3", "strip", TRUE, NULL);
}
#endif
