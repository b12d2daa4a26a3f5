/* An element-wise int8 -> int8 function by table lookup (see at_lut_params_t). */
#include "at_kernels.h"

void at_lut_s8(const at_lut_params_t *p, const int8_t *input, int8_t *output)
{
    const int8_t *const table = p->table + 128;
    const int8_t *const end = input + p->size;
    while (input < end) {
        *output++ = table[*input++];
    }
}
