/* The RP2040 cycle counter of the board firmware (rp2040_cycles.c): the at_board_timer_*
 * functions of autotune_protocol.h, for the bare-metal build and the Pico SDK build alike. */
#ifndef RP2040_CYCLES_H
#define RP2040_CYCLES_H

#define CLOCK_HZ 133000000u  /* clk_sys: the rp2040 target's clock, set by main */

void rp2040_cycles_init(void);  /* starts SysTick on the core clock; the timer must be running */

#endif
