/* rans_grid: rANS over the levels of the symmetric grid low-bit weights are on (see
 * at_decode_rans.c): the rans decoder built a third time, so plain rans keeps its smaller code. */
#define AT_RANS_GRID
#include "at_decode_rans.c"
