/* DEPTHWISE_CONV_2D, int8, per-channel requantization
 * (TFLM reference_integer_ops::DepthwiseConvPerChannel), Helium.
 *
 * The sums are those of the generic kernel (../at_depthwise_conv_s8.c). Channels are the vector
 * lanes, eight at a time as int16 (a widening load of eight input and eight filter bytes per
 * tap, VMULLB/VMULLT into two int32 accumulators of the even and odd channels), taps the loop.
 * A tap in the padding reads the input zero point, as at_window_s8 would copy it: TFLM adds
 * nothing for it, and acc_init's input_offset * filter term cancels w * zero point. So no window
 * is gathered, except for a depth multiplier above 1 (each input channel feeds several output
 * channels): those windows come from at_window_s8, with the input channels repeated.
 * The channel groups are the outer loop: a group's constants are laid out once for vector loads.
 */
#include <stddef.h>

#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

/* One group of up to eight channels: acc_init, multiplier and shift of the even channels
 * (0, 2, 4, 6 of the group) and of the odd ones, for contiguous vector loads, and the output
 * clamp as int16 lanes. */
typedef struct {
    int32_t init[2][4], multiplier[2][4], shift[2][4];
    int16_t lo[8], hi[8];
} group_t;

AT_INLINE void load_group(group_t *g, const at_channel_t *ch, int32_t count, const at_output_t *q)
{
    int32_t k;
    for (k = 0; k < 8; ++k) {
        const at_channel_t *c = ch + (k < count ? k : count - 1);
        g->init[k & 1][k >> 1] = c->acc_init;
        g->multiplier[k & 1][k >> 1] = c->multiplier;
        g->shift[k & 1][k >> 1] = c->shift;
        g->lo[k] = (int16_t)q->min;
        g->hi[k] = (int16_t)q->max;
    }
}

/* Requantizes the even and odd accumulators of a group and stores its channels in order. */
AT_INLINE void store_group(const group_t *g, int32x4_t even, int32x4_t odd, const at_output_t *q,
                           mve_pred16_t lanes, int8_t *out, int32_t mode)
{
    int16x8_t y;
    even = at_mve_mbqm(even, vldrwq_s32(g->multiplier[0]), vldrwq_s32(g->shift[0]), mode);
    odd = at_mve_mbqm(odd, vldrwq_s32(g->multiplier[1]), vldrwq_s32(g->shift[1]), mode);
    /* saturated to int16, the zero point added saturating: beyond int8 either way, as clamped */
    y = vqaddq_n_s16(vqmovntq_s32(vqmovnbq_s32(vdupq_n_s16(0), even), odd), (int16_t)q->offset);
    y = vminq_s16(vmaxq_s16(y, vldrhq_s16(g->lo)), vldrhq_s16(g->hi));
    vstrbq_p_s16(out, y, lanes);
}

/* A run of output pixels of one group whose windows lie inside the input, two at a time. */
typedef struct {
    const group_t *group;
    const int8_t *filter;  /* the group's first channel of tap 0 */
    int32_t step;          /* input bytes from a pair's first window to its second */
    int32_t pair;          /* input bytes from one pair's first window to the next pair's */
    int32_t out_b;         /* output bytes from a pair's first pixel to its second */
    int32_t out_pair;      /* output bytes from one pair to the next */
    int32_t taps_w, rows;  /* filter columns and rows */
    int32_t row_skip;      /* input bytes from the end of a filter row's taps to the next row */
    int32_t offset;        /* output zero point */
    uint32_t lanes;        /* predicate of the group's channels */
} run_t;

/* The assembly's offsets of run_t's and group_t's fields, checked at compile time. */
typedef char at_group_multiplier_at[offsetof(group_t, multiplier) == 32 ? 1 : -1];
typedef char at_group_shift_at[offsetof(group_t, shift) == 64 ? 1 : -1];
typedef char at_group_lo_at[offsetof(group_t, lo) == 96 && offsetof(group_t, hi) == 112 ? 1 : -1];
#define AT_RUN_GROUP "0"
#define AT_RUN_FILTER "4"
#define AT_RUN_STEP "8"
#define AT_RUN_PAIR "12"
#define AT_RUN_OUT_B "16"
#define AT_RUN_OUT_PAIR "20"
#define AT_RUN_TAPS_W "24"
#define AT_RUN_ROWS "28"
#define AT_RUN_ROW_SKIP "32"
#define AT_RUN_OFFSET "36"
#define AT_RUN_LANES "40"
typedef char at_run_group_at[offsetof(run_t, group) == 0 ? 1 : -1];
typedef char at_run_filter_at[offsetof(run_t, filter) == 4 ? 1 : -1];
typedef char at_run_step_at[offsetof(run_t, step) == 8 ? 1 : -1];
typedef char at_run_pair_at[offsetof(run_t, pair) == 12 ? 1 : -1];
typedef char at_run_out_b_at[offsetof(run_t, out_b) == 16 ? 1 : -1];
typedef char at_run_out_pair_at[offsetof(run_t, out_pair) == 20 ? 1 : -1];
typedef char at_run_taps_w_at[offsetof(run_t, taps_w) == 24 ? 1 : -1];
typedef char at_run_rows_at[offsetof(run_t, rows) == 28 ? 1 : -1];
typedef char at_run_row_skip_at[offsetof(run_t, row_skip) == 32 ? 1 : -1];
typedef char at_run_offset_at[offsetof(run_t, offset) == 36 ? 1 : -1];
typedef char at_run_lanes_at[offsetof(run_t, lanes) == 40 ? 1 : -1];

/* The run in assembly, as GCC 12 spills the loop state of the C version (about 15 cycles a tap
 * of one pixel; here 16 a tap of two). Per pair of pixels: the accumulators from acc_init; per
 * tap, eight filter values and eight input values of each pixel widened to int16, VMULLB and
 * VMULLT into the even and odd channels' int32 sums; then requantized (modes AT_MVE_RELU and
 * AT_MVE_RIGHT), narrowed with saturation to int16 (beyond int8 either way), the zero point
 * added and clamped there, stored as bytes. Widening loads and narrowing stores take low
 * registers ("l"). VPR is written: out of line, the call clobbers it (see conv_run in
 * at_conv_s8.c). */
static AT_NOINLINE void depthwise_run(const run_t *r, const int8_t *x, int32_t pairs, int32_t tap_x,
                                      int32_t out_c, int8_t *out, int32_t mode)
{
#define AT_DEPTHWISE_RUN(TAP_LOADS, LOAD_B, REQUANT, LANES)                                                  \
    __asm__ volatile("ldr r0, [%[r], #" AT_RUN_LANES "]\n\t"                                       \
                     "vmsr p0, r0\n"                                                               \
                     "2:\n\t"                                                                      \
                     "vldrw.u32 %q[ea], [%[g]]\n\t"                                                \
                     "vldrw.u32 %q[oa], [%[g], #16]\n\t"                                           \
                     "vldrw.u32 %q[eb], [%[g]]\n\t"                                                \
                     "vldrw.u32 %q[ob], [%[g], #16]\n\t"                                           \
                     "mov %[xa], %[x]\n\t"                                                         \
                     "ldr r0, [%[r], #" AT_RUN_STEP "]\n\t"                                        \
                     "add %[xb], %[x], r0\n\t"                                                     \
                     "ldr %[wt], [%[r], #" AT_RUN_FILTER "]\n\t"                                   \
                     "ldr %[rc], [%[r], #" AT_RUN_ROWS "]\n"                                       \
                     "3:\n\t"                                                                      \
                     "ldr r0, [%[r], #" AT_RUN_TAPS_W "]\n\t"                                      \
                     "dls lr, r0\n"                                                                \
                     "1:\n\t" TAP_LOADS                                                            \
                     "vmullb.s16 %q[p], %q[va], %q[w]\n\t"                                         \
                     LOAD_B                                                                        \
                     "vmullt.s16 %q[va], %q[va], %q[w]\n\t"                                        \
                     "vadd.i32 %q[ea], %q[ea], %q[p]\n\t"                                          \
                     "vmullb.s16 %q[p], %q[vb], %q[w]\n\t"                                         \
                     "vadd.i32 %q[oa], %q[oa], %q[va]\n\t"                                         \
                     "vmullt.s16 %q[vb], %q[vb], %q[w]\n\t"                                        \
                     "vadd.i32 %q[eb], %q[eb], %q[p]\n\t"                                          \
                     "add %[xb], %[tap_x]\n\t"                                                     \
                     "vadd.i32 %q[ob], %q[ob], %q[vb]\n\t"                                         \
                     "le lr, 1b\n\t"                                                               \
                     "subs %[rc], #1\n\t"                                                          \
                     "beq 4f\n\t"                                                                  \
                     "ldr r0, [%[r], #" AT_RUN_ROW_SKIP "]\n\t"                                    \
                     "add %[xa], r0\n\t"                                                           \
                     "add %[xb], r0\n\t"                                                           \
                     "b 3b\n"                                                                      \
                     "4:\n\t" REQUANT LANES                                                        \
                     "ldr r0, [%[r], #" AT_RUN_OUT_B "]\n\t"                                       \
                     "add r0, %[out]\n\t"                                                          \
                     "vpstt\n\t"                                                                   \
                     "vstrbt.16 %q[w], [%[out]]\n\t"                                               \
                     "vstrbt.16 %q[p], [r0]\n\t"                                                   \
                     "ldr r0, [%[r], #" AT_RUN_OUT_PAIR "]\n\t"                                    \
                     "add %[out], r0\n\t"                                                          \
                     "ldr r0, [%[r], #" AT_RUN_PAIR "]\n\t"                                        \
                     "add %[x], r0\n\t"                                                            \
                     "subs %[n], #1\n\t"                                                           \
                     "bne 2b"                                                                       \
                     : [ea] "=&w"(ea), [oa] "=&w"(oa), [eb] "=&w"(eb), [ob] "=&w"(ob), [w] "=&w"(w), \
                       [va] "=&w"(va), [vb] "=&w"(vb), [p] "=&w"(prod), [x] "+r"(x), [n] "+r"(pairs), \
                       [out] "+l"(out), [xa] "=&l"(xa), [xb] "=&l"(xb), [wt] "=&l"(wt), [rc] "=&r"(rc) \
                     : [r] "r"(r), [g] "r"(r->group), [tap_x] "r"(tap_x), [out_c] "r"(out_c)          \
                     : "r0", "lr", "cc", "memory")
/* a tap's filter and input values, the pointers stepped between the loads: predicated on the
 * group's channels, or all eight (the second pixel's load: LOAD_B); ordered so
 * that the Cortex-M55 overlaps the loads, multiplies and additions (14 cycles a tap of two
 * pixels, in place of 18) */
#define AT_DW_PREDICATED "vpstt\n\t"                                                              \
    "vldrbt.s16 %q[w], [%[wt]]\n\t"                                                                \
    "vldrbt.s16 %q[va], [%[xa]]\n\t"                                                               \
    "add %[wt], %[out_c]\n\t"                                                                      \
    "add %[xa], %[tap_x]\n\t"
#define AT_DW_EIGHT "vldrb.s16 %q[w], [%[wt]]\n\t"                                                 \
    "add %[wt], %[out_c]\n\t"                                                                      \
    "vldrb.s16 %q[va], [%[xa]]\n\t"                                                                \
    "add %[xa], %[tap_x]\n\t"
/* the store's predicate again after a fix-up's VPT */
#define AT_DW_LANES "ldr r0, [%[r], #" AT_RUN_LANES "]\n\tvmsr p0, r0\n\t"
    const int32_t eight = r->lanes == 0xffffu; /* all eight int16 lanes */
    int32x4_t ea, oa, eb, ob, w, va, vb, prod;
    const int8_t *xa, *xb, *wt;
    int32_t rc;
/* pixels a (w) and b (vb) narrowed to int16: the zero point added, clamped (lo in p, hi in va),
 * pixel b into p */
#define AT_DW_CLAMP                                                                                \
    "ldr r0, [%[r], #" AT_RUN_OFFSET "]\n\t"                                                        \
    "vqadd.s16 %q[w], %q[w], r0\n\t"                                                               \
    "vqadd.s16 %q[vb], %q[vb], r0\n\t"                                                             \
    "vmax.s16 %q[w], %q[w], %q[p]\n\t"                                                             \
    "vmax.s16 %q[vb], %q[vb], %q[p]\n\t"                                                           \
    "vmin.s16 %q[w], %q[w], %q[va]\n\t"                                                            \
    "vmin.s16 %q[p], %q[vb], %q[va]\n\t"
/* the variants: eight channels or fewer (predicated loads); the fix-up's VPT resets the predicate */
#define AT_DEPTHWISE_RELU(REQUANT)                                                                 \
    if (eight) {                                                                                   \
        AT_DEPTHWISE_RUN(AT_DW_EIGHT, "vldrb.s16 %q[vb], [%[xb]]\n\t", REQUANT, "");                                                \
    } else {                                                                                       \
        AT_DEPTHWISE_RUN(AT_DW_PREDICATED, "vpst\n\tvldrbt.s16 %q[vb], [%[xb]]\n\t", REQUANT, "");                                           \
    }
#define AT_DEPTHWISE_RIGHT(REQUANT)                                                                \
    if (eight) {                                                                                   \
        AT_DEPTHWISE_RUN(AT_DW_EIGHT, "vldrb.s16 %q[vb], [%[xb]]\n\t", REQUANT, AT_DW_LANES);                                       \
    } else {                                                                                       \
        AT_DEPTHWISE_RUN(AT_DW_PREDICATED, "vpst\n\tvldrbt.s16 %q[vb], [%[xb]]\n\t", REQUANT, AT_DW_LANES);                                  \
    }
    /* requantized: pixel a into w, pixel b into p (both int16, clamped) */
    if (mode == AT_MVE_RELU) { /* interleaved to keep the vector pipes apart */
        AT_DEPTHWISE_RELU("vldrw.u32 %q[w], [%[g], #32]\n\t"
                         "vldrw.u32 %q[vb], [%[g], #48]\n\t"
                         "vqrdmulh.s32 %q[ea], %q[ea], %q[w]\n\t"
                         "vldrw.u32 %q[p], [%[g], #64]\n\t"
                         "vqrdmulh.s32 %q[eb], %q[eb], %q[w]\n\t"
                         "vldrw.u32 %q[va], [%[g], #80]\n\t"
                         "vqrdmulh.s32 %q[oa], %q[oa], %q[vb]\n\t"
                         "vrshl.s32 %q[ea], %q[ea], %q[p]\n\t"
                         "vqrdmulh.s32 %q[ob], %q[ob], %q[vb]\n\t"
                         "vrshl.s32 %q[eb], %q[eb], %q[p]\n\t"
                         "vldrh.u16 %q[p], [%[g], #96]\n\t"
                         "vrshl.s32 %q[oa], %q[oa], %q[va]\n\t"
                         "vqmovnb.s32 %q[w], %q[ea]\n\t"
                         "vrshl.s32 %q[ob], %q[ob], %q[va]\n\t"
                         "vqmovnt.s32 %q[w], %q[oa]\n\t"
                         "vldrh.u16 %q[va], [%[g], #112]\n\t"
                         "vqmovnb.s32 %q[vb], %q[eb]\n\t"
                         "vqmovnt.s32 %q[vb], %q[ob]\n\t" AT_DW_CLAMP);
    } else {
        AT_DEPTHWISE_RIGHT("vldrw.u32 %q[w], [%[g], #32]\n\t"
                         "vldrw.u32 %q[vb], [%[g], #48]\n\t"
                         "vqrdmulh.s32 %q[ea], %q[ea], %q[w]\n\t"
                         "vqrdmulh.s32 %q[eb], %q[eb], %q[w]\n\t"
                         "vqrdmulh.s32 %q[oa], %q[oa], %q[vb]\n\t"
                         "vqrdmulh.s32 %q[ob], %q[ob], %q[vb]\n\t"
                         "vldrw.u32 %q[p], [%[g], #64]\n\t"
                         "vldrw.u32 %q[va], [%[g], #80]\n\t"
                         "movs r0, #1\n\t"
                         "vpt.s32 lt, %q[ea], zr\n\t"
                         "vqsubt.s32 %q[ea], %q[ea], r0\n\t"
                         "vpt.s32 lt, %q[eb], zr\n\t"
                         "vqsubt.s32 %q[eb], %q[eb], r0\n\t"
                         "vpt.s32 lt, %q[oa], zr\n\t"
                         "vqsubt.s32 %q[oa], %q[oa], r0\n\t"
                         "vpt.s32 lt, %q[ob], zr\n\t"
                         "vqsubt.s32 %q[ob], %q[ob], r0\n\t"
                         "vrshl.s32 %q[ea], %q[ea], %q[p]\n\t"
                         "vrshl.s32 %q[eb], %q[eb], %q[p]\n\t"
                         "vrshl.s32 %q[oa], %q[oa], %q[va]\n\t"
                         "vrshl.s32 %q[ob], %q[ob], %q[va]\n\t"
                         "vldrh.u16 %q[p], [%[g], #96]\n\t"
                         "vldrh.u16 %q[va], [%[g], #112]\n\t"
                         "vqmovnb.s32 %q[w], %q[ea]\n\t"
                         "vqmovnt.s32 %q[w], %q[oa]\n\t"
                         "vqmovnb.s32 %q[vb], %q[eb]\n\t"
                         "vqmovnt.s32 %q[vb], %q[ob]\n\t" AT_DW_CLAMP);
    }
#undef AT_DEPTHWISE_RUN
#undef AT_DEPTHWISE_RELU
#undef AT_DEPTHWISE_RIGHT
#undef AT_DW_PREDICATED
#undef AT_DW_EIGHT
#undef AT_DW_LANES
#undef AT_DW_CLAMP
}

/* The output pixels [0, count) of a row of one group, inside the input: in pairs, and an odd
 * last pixel in a pair with the one before (written twice, alike) or with itself. */
AT_INLINE void depthwise_inside(run_t *r, const int8_t *x, int32_t count, int32_t tap_x, int32_t out_c,
                                int8_t *out, int32_t mode)
{
    if (count >= 2) {
        depthwise_run(r, x, count >> 1, tap_x, out_c, out, mode);
    }
    if (count & 1) {
        const int32_t last = count - 1, first = count > 1 ? last - 1 : last;
        r->step = (last - first) * r->step;
        r->out_b = (last - first) * r->out_b;
        depthwise_run(r, x + first * (r->pair >> 1), 1, tap_x, out_c, out + first * out_c, mode);
    }
}

/* One tap: its input and filter values of the group's channels multiplied and added. */
AT_INLINE void tap(int16x8_t xv, const int8_t *w, mve_pred16_t lanes, int32x4_t *even, int32x4_t *odd)
{
    const int16x8_t wv = vldrbq_z_s16(w, lanes);
    *even = vaddq_s32(*even, vmullbq_int_s16(xv, wv));
    *odd = vaddq_s32(*odd, vmulltq_int_s16(xv, wv));
}

/* One output pixel of a group in C: a window inside the input read in place, a border window
 * with the padding's taps reading the zero point, or (a depth multiplier above 1) the window
 * at_window_s8 gathers, the input channels repeated. Out of line: its vector temporaries do not
 * widen the caller's frame. */
static AT_NOINLINE AT_MVE_FAST void depthwise_pixel(const at_depthwise_conv_params_t *p, const group_t *g,
                                                    const int8_t *in_b, int32_t c, int32_t oy, int32_t ox,
                                                    int8_t *scratch, mve_pred16_t lanes, int8_t *out, int32_t mode)
{
    const at_window_t *win = &p->win;
    const int32_t out_c = p->out_c, taps_w = win->filter_w, taps_h = win->filter_h;
    const int32_t col = win->in_c, row = win->in_w * win->in_c;
    const int32_t iy0 = oy * win->stride_h - win->pad_h, ix0 = ox * win->stride_w - win->pad_w;
    const int8_t *w = p->filter + c;
    int32x4_t even = vldrwq_s32(g->init[0]), odd = vldrwq_s32(g->init[1]);
    int32_t fy, fx;
    if (win->repeat != 1) {
        const int8_t *x = at_window_s8(win, in_b - c, oy, ox, scratch) + c;
        for (fy = taps_h * taps_w; fy > 0; --fy, x += out_c, w += out_c) {
            tap(vldrbq_z_s16(x, lanes), w, lanes, &even, &odd);
        }
    } else {
        const int16x8_t zero_point = vdupq_n_s16((int16_t)win->zero_point);
        for (fy = 0; fy < taps_h; ++fy) {
            const int32_t iy = iy0 + fy * win->dilation_h;
            for (fx = 0; fx < taps_w; ++fx, w += out_c) {
                const int32_t ix = ix0 + fx * win->dilation_w;
                tap(iy >= 0 && iy < win->in_h && ix >= 0 && ix < win->in_w
                        ? vldrbq_z_s16(in_b + iy * row + ix * col, lanes) : zero_point,
                    w, lanes, &even, &odd);
            }
        }
    }
    store_group(g, even, odd, &p->output_quant, lanes, out, mode);
}

AT_MVE_FAST void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                                      int8_t *output, int8_t *scratch)
{
    const int32_t mode = at_mve_mode(p->channels, p->out_c, &p->output_quant);
    const at_window_t *win = &p->win;
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    const int32_t out_c = p->out_c, taps_w = win->filter_w, taps_h = win->filter_h;
    const int32_t col = win->in_c, row = win->in_w * win->in_c;
    const int32_t tap_x = win->dilation_w * col, tap_y = win->dilation_h * row;
    /* A depth multiplier above 1: windows from at_window_s8, [tap][out_c] in scratch. */
    const int32_t gathered = win->repeat != 1;
    const int32_t step = win->stride_w * col;
    group_t g;
    int32_t c, b, oy, ox;
    for (c = 0; c < out_c; c += 8) {
        const int32_t count = out_c - c < 8 ? out_c - c : 8;
        const mve_pred16_t lanes = vctp16q((uint32_t)count);
        const int8_t *const filter = p->filter + c;
        int8_t *out = output + c;
        load_group(&g, p->channels + c, count, &q);
        for (b = 0; b < p->batches; ++b) {
            const int8_t *in_b = input + b * win->in_h * row + c;
            for (oy = 0; oy < p->out_h; ++oy) {
                const int32_t iy0 = oy * win->stride_h - win->pad_h;
                const int32_t inside_row = !gathered && oy >= win->inside_y[0] && oy < win->inside_y[1];
                for (ox = 0; ox < p->out_w; ++ox, out += out_c) {
                    const int32_t ix0 = ox * win->stride_w - win->pad_w;
                    const int32_t inside = inside_row && ox >= win->inside_x[0] && ox < win->inside_x[1];
                    if (inside && mode != AT_MVE_ANY) { /* this and the row's next inside pixels */
                        const int32_t n = win->inside_x[1] - ox;
                        run_t r = {&g, filter, step, 2 * step, out_c, 2 * out_c, taps_w, taps_h,
                                   tap_y - taps_w * tap_x, q.offset, lanes};
                        depthwise_inside(&r, in_b + iy0 * row + ix0 * col, n, tap_x, out_c, out, mode);
                        ox += n - 1;
                        out += (n - 1) * out_c;
                        continue;
                    }
                    depthwise_pixel(p, &g, in_b, c, oy, ox, scratch, lanes, out, mode);
                }
            }
        }
    }
}
