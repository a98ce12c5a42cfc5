/* fclf_render.h: text on an RGBA canvas with FreeType, for fclf-classify's contact sheet. Internal. */
#ifndef FCLF_RENDER_H
#define FCLF_RENDER_H

#include <stdint.h>

typedef struct fclf_font fclf_font;

/* Opens a TrueType font at a pixel size; NULL when the file cannot be used. */
fclf_font *fclf_font_open(const char *path, int pixel_size);
void fclf_font_close(fclf_font *font);

/* Draws UTF-8 text with its baseline at y, blending the glyphs' coverage over the canvas in color
 * (0xRRGGBB); clips at the canvas edges. Returns the advance in pixels. */
int32_t fclf_draw_text(fclf_font *font, uint8_t *rgba, int32_t width, int32_t height, int32_t x, int32_t y,
                       const char *text, uint32_t color);

#endif
