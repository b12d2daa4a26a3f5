/* The board firmware built with the Raspberry Pi Pico SDK (pico_sdk/CMakeLists.txt): the same
 * protocol (autotune_protocol.c) and cycle counter (rp2040_cycles.c), over USB CDC. The SDK brings
 * boot2, the start-up code and stdio; this sets clk_sys to the rp2040 target's 133 MHz.
 */
#include <stdint.h>

#include "autotune_protocol.h"
#include "hardware/clocks.h"
#include "pico/stdlib.h"
#include "rp2040_cycles.h"

uint8_t at_board_getc(void)
{
    int c;
    while ((c = getchar_timeout_us(1000000)) == PICO_ERROR_TIMEOUT) {
    }
    return (uint8_t)c;
}

void at_board_putc(uint8_t byte)
{
    putchar_raw(byte);  /* binary: no newline translation */
}

uint32_t at_board_clock_hz(void)
{
    return clock_get_hz(clk_sys);
}

int main(void)
{
    set_sys_clock_khz(CLOCK_HZ / 1000u, true);
    stdio_init_all();
    rp2040_cycles_init();
    at_protocol_serve();
}
