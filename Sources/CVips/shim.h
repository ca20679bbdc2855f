#ifndef CDE_CVIPS_SHIM_H
#define CDE_CVIPS_SHIM_H
#include <string.h>
#include <vips/vips.h>
// Variadic libvips calls and macros are wrapped here as plain functions when Swift needs them.
static inline int cde_vips_init(const char *argv0) { return VIPS_INIT(argv0); }

// ---- Imaging module wrappers (Sources/Imaging/ImageCodec.swift) ----
// Each returns 0 on success, -1 on failure (message in vips_error_buffer()).

/// Loads an image from memory; the loader is chosen from the bytes (JPEG, PNG,
/// GIF, TIFF, WebP natively; BMP through libvips' ImageMagick loader).
/// Only the header is read here (libvips loads lazily); pixels are decoded when the
/// image is written. `fail_on` makes damage found while decoding an error instead of a
/// VIPS-WARNING and grey or black filler (libvips `VipsFailOn`, 8.12 and later): JPEG
/// stops on any libjpeg warning (each one means corrupt entropy data or markers), the
/// other loaders on errors and truncation (libpng, libtiff and ImageMagick also warn
/// about benign things, such as an unexpected ICC profile, that Pillow accepts).
static inline VipsImage *cde_vips_load_buffer(const void *buf, size_t len) {
  const char *loader = vips_foreign_find_load_buffer(buf, len);
  if (loader == NULL) return NULL;  // message already in vips_error_buffer()
  VipsFailOn level = strstr(loader, "Jpeg") != NULL ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_ERROR;
  return vips_image_new_from_buffer(buf, len, "", "fail_on", level, NULL);
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
