/* RP2040 board firmware: clocks to 133 MHz from the 12 MHz crystal, UART0 at 115200 baud on GP0
 * (TX) and GP1 (RX), the cycle counter, and the request loop of autotune_protocol.c.
 *
 * Clocks (RP2040 datasheet 2.15-2.18): XOSC on (1-15 MHz range, start-up delay for 12 MHz);
 * PLL_SYS: REFDIV 1, FBDIV 133 -> VCO 1596 MHz, POSTDIV1 6, POSTDIV2 2 -> 133 MHz; clk_ref from
 * the XOSC, clk_sys switched glitch-free to the PLL (through clk_ref), clk_peri = clk_sys; the
 * watchdog tick at 1 MHz for the microsecond timer, which the cycle counter (rp2040_cycles.c)
 * reads beside SysTick. The simulators never run this `main`: they stop at it and run
 * `autotune_measure`.
 */
#include <stdint.h>

#include "autotune_protocol.h"
#include "rp2040_cycles.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define SET(addr) REG((addr) + 0x2000u)  /* atomic set alias */
#define CLR(addr) REG((addr) + 0x3000u)  /* atomic clear alias */

#define XOSC_HZ 12000000u
#define BAUD 115200u

#define RESETS 0x4000C000u
#define RESETS_RESET (RESETS + 0x0)
#define RESETS_DONE (RESETS + 0x8)
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_PLL_SYS (1u << 12)
#define RESET_TIMER (1u << 21)
#define RESET_UART0 (1u << 22)

#define XOSC 0x40024000u
#define XOSC_CTRL (XOSC + 0x00)
#define XOSC_STATUS (XOSC + 0x04)
#define XOSC_STARTUP (XOSC + 0x0C)

#define PLL_SYS 0x40028000u
#define PLL_CS (PLL_SYS + 0x0)
#define PLL_PWR (PLL_SYS + 0x4)
#define PLL_FBDIV (PLL_SYS + 0x8)
#define PLL_PRIM (PLL_SYS + 0xC)

#define CLOCKS 0x40008000u
#define CLK_REF_CTRL (CLOCKS + 0x30)
#define CLK_REF_SELECTED (CLOCKS + 0x38)
#define CLK_SYS_CTRL (CLOCKS + 0x3C)
#define CLK_SYS_SELECTED (CLOCKS + 0x44)
#define CLK_PERI_CTRL (CLOCKS + 0x48)
#define CLK_SYS_RESUS_CTRL (CLOCKS + 0x78)

#define WATCHDOG_TICK 0x4005802Cu

#define IO_BANK0_GPIO_CTRL(n) (0x40014004u + 8u * (n))
#define FUNCSEL_UART 2u

#define UART0 0x40034000u
#define UART_DR (UART0 + 0x00)
#define UART_FR (UART0 + 0x18)
#define UART_IBRD (UART0 + 0x24)
#define UART_FBRD (UART0 + 0x28)
#define UART_LCR_H (UART0 + 0x2C)
#define UART_CR (UART0 + 0x30)
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
/* PL011 divisor = clk_peri / (16 x baud) in 16.6 fixed point, rounded (datasheet 4.2.7.1). */
#define BAUD_DIV_X128 (8u * CLOCK_HZ / BAUD)
#define UART_IBRD_VALUE (BAUD_DIV_X128 >> 7)
#define UART_FBRD_VALUE (((BAUD_DIV_X128 & 0x7Fu) + 1u) / 2u)


static void unreset(uint32_t blocks)
{
    CLR(RESETS_RESET) = blocks;
    while ((REG(RESETS_DONE) & blocks) != blocks) {
    }
}

static void clocks_init(void)
{
    CLR(CLK_SYS_RESUS_CTRL) = 1u << 8;  /* no resuscitation while clk_sys is switched */
    CLR(CLK_SYS_CTRL) = 1u;  /* clk_sys from clk_ref (glitchless) while the PLL starts */
    while (REG(CLK_SYS_SELECTED) != 1u) {
    }

    REG(XOSC_CTRL) = 0xAA0u;  /* FREQ_RANGE 1-15 MHz */
    REG(XOSC_STARTUP) = (XOSC_HZ / 1000u + 128u) / 256u;  /* about 1 ms, in units of 256 cycles */
    SET(XOSC_CTRL) = 0xFABu << 12;  /* ENABLE */
    while (!(REG(XOSC_STATUS) & (1u << 31))) {  /* STABLE */
    }
    REG(CLK_REF_CTRL) = 2u;  /* clk_ref = XOSC, divider 1 */
    while (REG(CLK_REF_SELECTED) != (1u << 2)) {
    }

    SET(RESETS_RESET) = RESET_PLL_SYS;
    unreset(RESET_PLL_SYS);
    REG(PLL_CS) = 1u;  /* REFDIV */
    REG(PLL_FBDIV) = 133u;  /* VCO = 12 MHz x 133 = 1596 MHz (750-1600 allowed) */
    CLR(PLL_PWR) = (1u << 0) | (1u << 5);  /* power up the PLL and its VCO */
    while (!(REG(PLL_CS) & (1u << 31))) {  /* LOCK */
    }
    REG(PLL_PRIM) = (6u << 16) | (2u << 12);  /* 1596 / 6 / 2 = 133 MHz */
    CLR(PLL_PWR) = 1u << 3;  /* power up the post dividers */

    REG(CLK_SYS_CTRL) = (0u << 5) | 0u;  /* AUXSRC = PLL_SYS, still on clk_ref */
    SET(CLK_SYS_CTRL) = 1u;  /* switch to the aux source */
    while (REG(CLK_SYS_SELECTED) != (1u << 1)) {
    }
    REG(CLK_PERI_CTRL) = (1u << 11) | (0u << 5);  /* ENABLE, AUXSRC = clk_sys */

    REG(WATCHDOG_TICK) = (1u << 9) | (XOSC_HZ / 1000000u);  /* 1 us ticks from clk_ref */
}

static void uart_init(void)
{
    unreset(RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0 | RESET_TIMER);
    REG(UART_IBRD) = UART_IBRD_VALUE;
    REG(UART_FBRD) = UART_FBRD_VALUE;
    REG(UART_LCR_H) = (3u << 5) | (1u << 4);  /* 8 data bits, no parity, 1 stop bit, FIFOs on; latches the divisor */
    REG(UART_CR) = (1u << 9) | (1u << 8) | 1u;  /* RXE, TXE, UARTEN */
    REG(IO_BANK0_GPIO_CTRL(0)) = FUNCSEL_UART;  /* GP0: UART0 TX */
    REG(IO_BANK0_GPIO_CTRL(1)) = FUNCSEL_UART;  /* GP1: UART0 RX */
}

uint8_t at_board_getc(void)
{
    while (REG(UART_FR) & UART_FR_RXFE) {
    }
    return (uint8_t)REG(UART_DR);
}

void at_board_putc(uint8_t byte)
{
    while (REG(UART_FR) & UART_FR_TXFF) {
    }
    REG(UART_DR) = byte;
}

uint32_t at_board_clock_hz(void)
{
    return CLOCK_HZ;
}

int main(void)
{
    clocks_init();
    uart_init();
    rp2040_cycles_init();
    at_protocol_serve();
}
