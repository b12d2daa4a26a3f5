/* Firmware harness: runs the model once, then stops at `halt`.
 *
 * Runners (ISS, QEMU, board) write the input into `autotune_input`, run from reset until the
 * PC reaches `halt`, then read `autotune_output` and `autotune_status`. The buffers are global
 * (not static) so they keep their symbol names, and the entry point is called through a
 * separate translation unit, so the compiler cannot drop any of the model code.
 */
#include <stdint.h>

#include "model.h"

#ifndef AUTOTUNE_ENTRY
#error "AUTOTUNE_ENTRY (the model's invoke function) must be defined on the command line"
#endif
#if !defined(MODEL_INPUT_SIZE) || !defined(MODEL_OUTPUT_SIZE)
#error "model.h must define MODEL_INPUT_SIZE and MODEL_OUTPUT_SIZE (bytes)"
#endif

int AUTOTUNE_ENTRY(const int8_t *input, int8_t *output);

int8_t autotune_input[MODEL_INPUT_SIZE];
int8_t autotune_output[MODEL_OUTPUT_SIZE];
volatile int32_t autotune_status = -1;

void halt(void) __attribute__((noreturn, noinline));
void halt(void)
{
    for (;;) {
    }
}

int main(void)
{
    autotune_status = AUTOTUNE_ENTRY(autotune_input, autotune_output);
    halt();
}
