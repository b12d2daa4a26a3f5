/* The model's input and output buffers, as the harness files name them. A model that keeps them
 * in its arena (model.h defines MODEL_INPUT and MODEL_OUTPUT) is run on those, nothing copied;
 * otherwise the harness's own autotune_input and autotune_output (autotune_io.c) are passed. */
#ifndef AUTOTUNE_IO_H
#define AUTOTUNE_IO_H

#include <stdint.h>

#include "model.h"

#ifdef MODEL_INPUT
#define AUTOTUNE_INPUT MODEL_INPUT
#define AUTOTUNE_OUTPUT MODEL_OUTPUT
#else
extern int8_t autotune_input[MODEL_INPUT_SIZE];
extern int8_t autotune_output[MODEL_OUTPUT_SIZE];
#define AUTOTUNE_INPUT autotune_input
#define AUTOTUNE_OUTPUT autotune_output
#endif

#endif /* AUTOTUNE_IO_H */
