/* The style and the script of the HTML head view (write/html.c): the text
 * of src/write/html_page.css and html_page.js, each NUL-terminated,
 * generated at build time by tools/embed_text.c. */
#ifndef ATTN_WRITE_HTML_PAGE_H
#define ATTN_WRITE_HTML_PAGE_H

extern const char attn_html_page_css[];
extern const char attn_html_page_js[];

#endif
