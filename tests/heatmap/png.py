"""A small PNG decoder for the heatmap tests: 8-bit RGB or RGBA, not
interlaced, the five filter types (PNG spec, ISO/IEC 15948, sections 9 and
11), with zlib and struct only. decode(bytes) -> Image."""
import struct
import zlib


class Image:
    def __init__(self, width, height, channels, data):
        self.width, self.height, self.channels = width, height, channels
        self.data = data  # bytes, rows top first, channels bytes a pixel

    def pixel(self, x, y):
        i = (y * self.width + x) * self.channels
        return tuple(self.data[i:i + 3])

    def colour_counts(self):
        """{pixel: how many pixels have it}."""
        counts = {}
        for y in range(self.height):
            for x in range(self.width):
                px = self.pixel(x, y)
                counts[px] = counts.get(px, 0) + 1
        return counts


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(png):
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG signature")
    pos, idat, ihdr, ended = 8, [], None, False
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("bad CRC in chunk %r" % kind)
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            ended = True
            break
    if not ihdr or not ended:
        raise ValueError("no IHDR or no IEND")
    w, h, depth, ctype, comp, filt, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or comp or filt or interlace:
        raise ValueError("unsupported PNG: depth %d colour type %d interlace %d" %
                         (depth, ctype, interlace))
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    if len(raw) != h * (stride + 1):
        raise ValueError("image data of %d bytes, expected %d" % (len(raw), h * (stride + 1)))
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 0:
            pass
        elif ft == 1:
            for i in range(ch, stride):
                line[i] = (line[i] + line[i - ch]) & 255
        elif ft == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ft == 3:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ft == 4:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                ul = prev[i - ch] if i >= ch else 0
                line[i] = (line[i] + _paeth(left, prev[i], ul)) & 255
        else:
            raise ValueError("row %d: filter type %d" % (y, ft))
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return Image(w, h, ch, bytes(out))


def read(path):
    with open(path, "rb") as f:
        return decode(f.read())
