/* The board protocol: framed requests in, framed answers out, over a byte stream (a UART, or
 * USB CDC in the Pico SDK build). Described in README.md ("Board protocol"); the host side is
 * device_runners/board_protocol.py.
 *
 * Frame: 'A' 'T', type (1 byte), payload length (4 bytes), payload, CRC-32 (4 bytes) of type,
 * length and payload (the zlib / IEEE 802.3 CRC). Integers are little-endian.
 *   INFO   (0x01, empty)        -> 0x81: version, input bytes, output bytes, clock Hz (4 x u32)
 *   INVOKE (0x02, the input)    -> 0x82: status (i32), cycles (u64), microseconds (u32), output
 *   anything wrong              -> 0xEE: error code (u32): 1 CRC, 2 length, 3 unknown type
 */
#ifndef AUTOTUNE_PROTOCOL_H
#define AUTOTUNE_PROTOCOL_H

#include <stdint.h>

#define AT_PROTOCOL_VERSION 1u

/* What a board provides. */
uint8_t at_board_getc(void);  /* blocks until a byte arrives */
void at_board_putc(uint8_t byte);
void at_board_timer_start(void);
uint64_t at_board_timer_cycles(void);  /* core cycles since at_board_timer_start */
uint32_t at_board_timer_microseconds(void);  /* microseconds since at_board_timer_start */
uint32_t at_board_clock_hz(void);

/* Answers requests for ever. */
void at_protocol_serve(void) __attribute__((noreturn));

#endif
