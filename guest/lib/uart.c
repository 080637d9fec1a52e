/* PL011 UART output and a small printf. */
#include "guest.h"

#define UART_DR 0x00
#define UART_FR 0x18
#define UART_FR_TXFF (1U << 5)

void uart_putc(char c)
{
    while (readl(UART_BASE + UART_FR) & UART_FR_TXFF)
        ;
    writel(UART_BASE + UART_DR, (u32)(u8)c);
}

void puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

struct sink {
    char *buf;   /* NULL: UART */
    size_t n, pos;
};

static void sink_put(struct sink *s, char c)
{
    if (!s->buf)
        uart_putc(c);
    else if (s->pos + 1 < s->n)
        s->buf[s->pos] = c;
    s->pos++;
}

static void emit_num(struct sink *s, u64 v, unsigned base, int neg, int width, char pad, int left, int upper)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    int len = n + (neg ? 1 : 0);
    if (!left && pad == '0') {
        if (neg)
            sink_put(s, '-');
        for (; len < width; width--)
            sink_put(s, '0');
    } else {
        if (!left)
            for (; len < width; width--)
                sink_put(s, ' ');
        if (neg)
            sink_put(s, '-');
    }
    while (n)
        sink_put(s, tmp[--n]);
    if (left)
        for (; len < width; width--)
            sink_put(s, ' ');
}

static int do_printf(struct sink *s, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            sink_put(s, *fmt);
            continue;
        }
        fmt++;
        int left = 0, width = 0, lng = 0;
        char pad = ' ';
        if (*fmt == '-') { left = 1; fmt++; }
        if (*fmt == '0') { pad = '0'; fmt++; }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') { lng++; fmt++; }
        if (*fmt == 'z') { lng = 1; fmt++; }
        switch (*fmt) {
        case 'd': case 'i': {
            long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
            emit_num(s, v < 0 ? (u64)(-(v + 1)) + 1 : (u64)v, 10, v < 0, width, pad, left, 0);
            break;
        }
        case 'u': {
            u64 v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            emit_num(s, v, 10, 0, width, pad, left, 0);
            break;
        }
        case 'x': case 'X': {
            u64 v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            emit_num(s, v, 16, 0, width, pad, left, *fmt == 'X');
            break;
        }
        case 'p': {
            u64 v = (u64)va_arg(ap, void *);
            sink_put(s, '0'); sink_put(s, 'x');
            emit_num(s, v, 16, 0, width, pad, left, 0);
            break;
        }
        case 's': {
            const char *p = va_arg(ap, const char *);
            if (!p) p = "(null)";
            int len = 0;
            while (p[len]) len++;
            if (!left) for (; len < width; width--) sink_put(s, ' ');
            while (*p) sink_put(s, *p++);
            if (left) for (; len < width; width--) sink_put(s, ' ');
            break;
        }
        case 'c':
            sink_put(s, (char)va_arg(ap, int));
            break;
        case '%':
            sink_put(s, '%');
            break;
        case 0:
            return (int)s->pos;
        default:
            sink_put(s, '%');
            sink_put(s, *fmt);
        }
    }
    return (int)s->pos;
}

int vprintf(const char *fmt, va_list ap)
{
    struct sink s = { 0, 0, 0 };
    return do_printf(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vprintf(fmt, ap);
    va_end(ap);
    return r;
}

int snprintf(char *buf, size_t n, const char *fmt, ...)
{
    struct sink s = { buf, n, 0 };
    va_list ap;
    va_start(ap, fmt);
    int r = do_printf(&s, fmt, ap);
    va_end(ap);
    if (n)
        buf[s.pos < n ? s.pos : n - 1] = 0;
    return r;
}
