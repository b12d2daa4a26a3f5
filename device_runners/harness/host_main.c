/* Host harness for bit-exactness tests: reads MODEL_INPUT_SIZE-byte records from stdin until
 * EOF and writes one MODEL_OUTPUT_SIZE-byte output per record to stdout (raw int8).
 * Exit status: 0 ok, 1 the model returned non-zero, 2 a truncated input record.
 * The model runs on buffers of this program; with -DAUTOTUNE_HOST_ARENA_IO on the model's own
 * MODEL_INPUT and MODEL_OUTPUT in its arena, as the firmware harness runs it.
 */
#include <stdint.h>
#include <stdio.h>

#include "model.h"

#define STR_(x) #x
#define STR(x) STR_(x)

int AUTOTUNE_ENTRY(const int8_t *input, int8_t *output);

int main(void)
{
#ifdef AUTOTUNE_HOST_ARENA_IO
    int8_t *const input = MODEL_INPUT;
    int8_t *const output = MODEL_OUTPUT;
#else
    static int8_t input[MODEL_INPUT_SIZE];
    static int8_t output[MODEL_OUTPUT_SIZE];
#endif
    size_t got;
    while ((got = fread(input, 1, MODEL_INPUT_SIZE, stdin)) == MODEL_INPUT_SIZE) {
        int status = AUTOTUNE_ENTRY(input, output);
        if (status != 0) {
            fprintf(stderr, "%s returned %d\n", STR(AUTOTUNE_ENTRY), status);
            return 1;
        }
        if (fwrite(output, 1, MODEL_OUTPUT_SIZE, stdout) != MODEL_OUTPUT_SIZE) {
            return 1;
        }
    }
    if (got != 0) {
        fprintf(stderr, "truncated input record: %zu of %d bytes\n", got, MODEL_INPUT_SIZE);
        return 2;
    }
    return 0;
}
