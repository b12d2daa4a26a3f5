/* rans_binned: rANS over a sign and a magnitude class, the class's trailing bits raw (see
 * at_decode_rans.c): the rans decoder built a second time, so plain rans keeps its smaller code. */
#define AT_RANS_BINNED
#include "at_decode_rans.c"
