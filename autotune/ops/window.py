"""Filter windows of convolutions and pools: output sizes, padding, and where windows fall."""
from __future__ import annotations

import numpy as np

MAX_WINDOW = 32767  # TFLM keeps strides, dilations and paddings in int16: larger ones are refused


def out_size(padding: str, size: int, filt: int, stride: int, dilation: int = 1) -> int:
    """TFLM ComputeOutSize (GetWindowedOutputSize in TensorFlow)."""
    eff = (filt - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size + stride - eff) // stride


def compute_padding(padding: str, size: int, filt: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """ComputePaddingHeightWidth for one dimension: (output size, leading pad)."""
    out = out_size(padding, size, filt, stride, dilation)
    total = (out - 1) * stride + (filt - 1) * dilation + 1 - size
    return out, max(total, 0) // 2


def tap_views(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
              pad: tuple[int, int], out_hw: tuple[int, ...], fill: int) -> list[np.ndarray]:
    """One view per kernel tap (ky, kx), row-major: view[n, oy, ox, c] is input pixel
    (oy * stride_h - pad_h + ky * dilation_h, ox * stride_w - pad_w + kx * dilation_w), or `fill`
    where that lies outside the input."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (oh, ow) = kernel, stride, dilation, pad, out_hw
    bottom = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - x.shape[1] - ph)
    right = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - x.shape[2] - pw)
    xp = np.pad(x, ((0, 0), (ph, bottom), (pw, right), (0, 0)), constant_values=fill)
    return [xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
            for ky in range(kh) for kx in range(kw)]


def inside(size: int, out: int, filt: int, stride: int, dilation: int, pad: int) -> tuple[int, int]:
    """The outputs [begin, end) along one axis whose filter window lies wholly inside the input:
    begin * stride - pad >= 0 and end - 1 its last with (filt - 1) * dilation more below size."""
    begin = -(-pad // stride)
    end = max((size - 1 + pad - (filt - 1) * dilation) // stride + 1, 0)
    end = min(end, out)
    return min(begin, end), end


def taps_inside(size: int, out: int, filt: int, stride: int, dilation: int, pad: int) -> np.ndarray:
    """For each output along one axis, how many of its filter taps land inside the input."""
    origin = np.arange(out, dtype=np.int64) * stride - pad
    first = np.maximum(0, -(origin // dilation))  # ceil(-origin / dilation)
    last = np.minimum(filt, -((origin - size) // dilation))  # ceil((size - origin) / dilation)
    return np.maximum(last - first, 0)


# A windowed kernel whose output may overwrite its input writes output pixel p only after the last
# read of every window before p - (PIXELS_AHEAD - 1) (at_kernels.h): several pixels per pass at most.
# A depthwise kernel of depth multiplier 1 writes channel c of pixel p only after its last read of
# channel c of every window up to p, except windows it reads again after their own pixel
# (`rereads`: the Helium kernel's odd last pixel of a run, helium_rereads).
PIXELS_AHEAD = 4
# Written last pixel first (a conv with `reverse`), output pixel p only after the last read of
# every window after p + (REVERSE_AHEAD - 1): runs of that many pixels, each run forward.
REVERSE_AHEAD = 16


def helium_rereads(out_w: int, inside_y: tuple[int, int], inside_x: tuple[int, int]) -> tuple[int, ...]:
    """Output pixels whose window the Helium depthwise kernel (cortex-m55-mve, depth multiplier 1)
    reads again after writing them: a row's run of windows inside the input goes in pairs, and an
    odd last pixel of a run of three or more is paired with the one before it."""
    (y0, y1), (x0, x1) = inside_y, inside_x
    if (x1 - x0) % 2 == 0 or x1 - x0 < 3:
        return ()
    return tuple(oy * out_w + x1 - 2 for oy in range(y0, y1))


def overwrite_lead(in_hw: tuple[int, int], out_hw: tuple[int, int], stride: tuple[int, int],
                   pad: tuple[int, int], in_pixel: int, out_pixel: int, channel_local: bool,
                   alignment: int = 4, rereads: tuple[int, ...] = ()) -> int:
    """Bytes before its input at which the output of a windowed kernel may start, written pixel by
    pixel in row-major order, so that no write lands on input a window still to be read needs.
    Every window from output pixel q on reads input pixels from need(q) on (its top-left corner,
    clamped to the input); when pixel p is written, windows from p - PIXELS_AHEAD + 1 on may still
    be read. `in_pixel` and `out_pixel` are the bytes of one pixel. A `channel_local` kernel
    (depthwise, depth multiplier 1: channel c from channel c) writes over each input channel
    only the same output channel, and only once it has read that channel of its own window: the
    write of pixel p must only precede the pixels of the windows after p in its own channel (of
    window p too where p is in `rereads`), and the lead is a whole number of pixels; otherwise the
    written bytes must end before those windows' first byte. Rounded up to `alignment`."""
    (in_h, in_w), (out_h, out_w), (sh, sw), (ph, pw) = in_hw, out_hw, stride, pad
    oy, ox = np.divmod(np.arange(out_h * out_w, dtype=np.int64), out_w)
    first = np.maximum(oy * sh - ph, 0) * in_w + np.maximum(ox * sw - pw, 0)
    need = np.minimum.accumulate(first[::-1])[::-1]  # the earliest pixel read from window q on
    p = np.arange(len(need))
    if channel_local:
        if in_pixel != out_pixel:
            raise ValueError("a channel-local kernel writes pixels of its input's size")
        later = np.append(need[1:], in_h * in_w)  # read after pixel p's write: from window p + 1 on
        again = np.zeros(len(need), dtype=bool)
        again[list(rereads)] = True
        ahead = np.where(again, need, later)
        pixels = max(int(np.max(p + 1 - ahead)), 0)
        while pixels * in_pixel % alignment:
            pixels += 1
        return pixels * in_pixel
    ahead = need[np.maximum(p - PIXELS_AHEAD + 1, 0)]
    return -(-max(int(np.max((p + 1) * out_pixel - ahead * in_pixel)), 0) // alignment) * alignment


def reverse_lag(in_hw: tuple[int, int], out_hw: tuple[int, int], stride: tuple[int, int],
                pad: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int], in_pixel: int,
                out_pixel: int, alignment: int = 4) -> int:
    """Bytes after its input's start at which the output of a windowed kernel may start (negative:
    before), written pixel by pixel last first (a conv with `reverse`), so that no write lands on
    input a window still to be read needs: when pixel p is written, windows up to p +
    REVERSE_AHEAD - 1 may still be read, and every window up to q reads input pixels up to
    reach(q) (its bottom-right corner, clamped to the input). Rounded up to `alignment`."""
    (in_h, in_w), (out_h, out_w), (sh, sw), (ph, pw), (kh, kw), (dh, dw) = in_hw, out_hw, stride, pad, kernel, dilation
    oy, ox = np.divmod(np.arange(out_h * out_w, dtype=np.int64), out_w)
    last_y = np.clip(oy * sh - ph + (kh - 1) * dh, 0, in_h - 1)
    last_x = np.clip(ox * sw - pw + (kw - 1) * dw, 0, in_w - 1)
    reach = np.maximum.accumulate(last_y * in_w + last_x)  # the last pixel read by windows up to q
    p = np.arange(len(reach))
    behind = reach[np.minimum(p + REVERSE_AHEAD - 1, len(reach) - 1)]
    lag = int(np.max((behind + 1) * in_pixel - p * out_pixel))
    return -(-lag // alignment) * alignment
