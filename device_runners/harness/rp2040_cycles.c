/* Core cycles around the model's entry function, on the RP2040 without interrupts: SysTick on the
 * core clock counts the low 24 bits exactly (it wraps every 126 ms at 133 MHz); the 1 MHz timer
 * gives the count to within 2 x 133 cycles, which picks the multiple of 2^24. The span counted
 * includes the few instructions between the counter reads and the call (tens of cycles).
 */
#include <stdint.h>

#include "autotune_protocol.h"
#include "rp2040_cycles.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define TIMER_TIMERAWL 0x40054028u
#define SYST_CSR 0xE000E010u
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u
#define SYSTICK_MASK 0xFFFFFFu

static uint32_t start_systick;
static uint32_t start_us;

void rp2040_cycles_init(void)
{
    REG(SYST_RVR) = SYSTICK_MASK;
    REG(SYST_CVR) = 0;
    REG(SYST_CSR) = (1u << 2) | 1u;  /* core clock, enabled, no interrupt */
}

void at_board_timer_start(void)
{
    start_us = REG(TIMER_TIMERAWL);
    start_systick = REG(SYST_CVR);
}

uint32_t at_board_timer_microseconds(void)
{
    return REG(TIMER_TIMERAWL) - start_us;
}

uint64_t at_board_timer_cycles(void)
{
    uint32_t systick = REG(SYST_CVR);  /* counts down */
    uint32_t us = REG(TIMER_TIMERAWL) - start_us;
    uint64_t fine = (start_systick - systick) & SYSTICK_MASK;
    uint64_t coarse = (uint64_t)us * (CLOCK_HZ / 1000000u);
    uint64_t half = (SYSTICK_MASK + 1u) / 2u;
    if (coarse + half < fine) {
        return fine;
    }
    return (((coarse + half - fine) >> 24) << 24) + fine;  /* the count nearest to the timer's */
}
