/* render.c: anti-aliased text through FreeType (Debian libfreetype-dev). */
#include "fclf_render.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <stdlib.h>

struct fclf_font {
    FT_Library library;
    FT_Face face;
};

fclf_font *fclf_font_open(const char *path, int pixel_size) {
    fclf_font *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    if (FT_Init_FreeType(&f->library) != 0) { free(f); return NULL; }
    if (FT_New_Face(f->library, path, 0, &f->face) != 0 || FT_Set_Pixel_Sizes(f->face, 0, (FT_UInt)pixel_size) != 0) {
        FT_Done_FreeType(f->library);
        free(f);
        return NULL;
    }
    return f;
}

void fclf_font_close(fclf_font *font) {
    if (!font) return;
    FT_Done_Face(font->face);
    FT_Done_FreeType(font->library);
    free(font);
}

/* Next code point of UTF-8 text (invalid bytes become U+FFFD). */
static uint32_t next_utf8(const unsigned char **s) {
    const unsigned char *p = *s;
    uint32_t c = *p++;
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (c >= 0x80 && extra == 0) { *s = p; return 0xFFFD; }
    c &= extra == 3 ? 0x07 : extra == 2 ? 0x0F : extra == 1 ? 0x1F : 0x7F;
    for (int i = 0; i < extra; i++) {
        if ((*p & 0xC0) != 0x80) { *s = p; return 0xFFFD; }
        c = c << 6 | (*p++ & 0x3F);
    }
    *s = p;
    return c;
}

int32_t fclf_draw_text(fclf_font *font, uint8_t *rgba, int32_t width, int32_t height, int32_t x, int32_t y,
                       const char *text, uint32_t color) {
    const uint8_t cr = (uint8_t)(color >> 16), cg = (uint8_t)(color >> 8), cb = (uint8_t)color;
    int32_t pen = x;
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        uint32_t cp = next_utf8(&s);
        if (FT_Load_Char(font->face, cp, FT_LOAD_RENDER) != 0) continue;
        FT_GlyphSlot g = font->face->glyph;
        for (unsigned row = 0; row < g->bitmap.rows; row++)
            for (unsigned col = 0; col < g->bitmap.width; col++) {
                int32_t px = pen + g->bitmap_left + (int32_t)col, py = y - g->bitmap_top + (int32_t)row;
                if (px < 0 || py < 0 || px >= width || py >= height) continue;
                unsigned a = g->bitmap.buffer[row * g->bitmap.pitch + col];
                uint8_t *d = rgba + ((size_t)py * width + px) * 4;
                d[0] = (uint8_t)((cr * a + d[0] * (255 - a)) / 255);
                d[1] = (uint8_t)((cg * a + d[1] * (255 - a)) / 255);
                d[2] = (uint8_t)((cb * a + d[2] * (255 - a)) / 255);
                d[3] = 255;
            }
        pen += (int32_t)(g->advance.x >> 6);
    }
    return pen - x;
}
