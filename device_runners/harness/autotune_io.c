/* What every firmware image holds for the runners: the model's input and output buffers, and
 * `autotune_measure`, which runs the model once on them and stops at `halt`.
 *
 * Simulators (rp2040-sim, nano33ble-sim, rp2040js) run the start-up code from reset to `main`,
 * write the input into `autotune_input`, continue at `autotune_measure` until the PC reaches
 * `halt`, then read `autotune_output` and `autotune_status`. A model that keeps its input and
 * output in its arena (autotune_io.h) gets no buffers here: the section `.autotune_io` tells the
 * runners where they are (device_runners.cortex_m_sim.read_image). So an image whose `main` is a
 * board's request loop (rp2040_board.c) runs on them unchanged. The buffers are global (not
 * static) so they keep their symbol names, the entry point is called through a separate
 * translation unit so the compiler cannot drop any of the model code, and the link keeps
 * `autotune_measure` even where `main` does not call it (-Wl,--undefined).
 */
#include <stdint.h>

#include "autotune_io.h"

#ifndef AUTOTUNE_ENTRY
#error "AUTOTUNE_ENTRY (the model's invoke function) must be defined on the command line"
#endif
#if !defined(MODEL_INPUT_SIZE) || !defined(MODEL_OUTPUT_SIZE)
#error "model.h must define MODEL_INPUT_SIZE and MODEL_OUTPUT_SIZE (bytes)"
#endif

int AUTOTUNE_ENTRY(const int8_t *input, int8_t *output);
void autotune_measure(void) __attribute__((noreturn));
void halt(void) __attribute__((noreturn, noinline));

#ifdef MODEL_INPUT
/* Where they are, for the runners: input address, output address, input size, output size as
 * 32-bit words in a section that is not loaded, so it costs no flash (retained: "R"). */
#define AUTOTUNE_STR_(x) #x
#define AUTOTUNE_STR(x) AUTOTUNE_STR_(x)
__asm__(".pushsection .autotune_io, \"R\", %progbits\n"
        ".word model_arena + " AUTOTUNE_STR(MODEL_INPUT_OFFSET) ", model_arena + " AUTOTUNE_STR(MODEL_OUTPUT_OFFSET)
        ", " AUTOTUNE_STR(MODEL_INPUT_SIZE) ", " AUTOTUNE_STR(MODEL_OUTPUT_SIZE) "\n"
        ".popsection");
#else
int8_t autotune_input[MODEL_INPUT_SIZE];
int8_t autotune_output[MODEL_OUTPUT_SIZE];
#endif
volatile int32_t autotune_status = -1;

void halt(void)
{
    for (;;) {
    }
}

void autotune_measure(void)
{
    autotune_status = AUTOTUNE_ENTRY(AUTOTUNE_INPUT, AUTOTUNE_OUTPUT);
    halt();
}
