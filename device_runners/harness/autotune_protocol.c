/* The board protocol (autotune_protocol.h): reads a frame, runs the model on it, answers. */
#include "autotune_protocol.h"

#include <stdint.h>

#include "autotune_io.h"

int AUTOTUNE_ENTRY(const int8_t *input, int8_t *output);

extern volatile int32_t autotune_status;

enum {
    REQUEST_INFO = 0x01,
    REQUEST_INVOKE = 0x02,
    ANSWER_INFO = 0x81,
    ANSWER_INVOKE = 0x82,
    ANSWER_ERROR = 0xEE,
    ERROR_CRC = 1,
    ERROR_LENGTH = 2,
    ERROR_TYPE = 3,
};

/* CRC-32 (reflected 0xEDB88320, as zlib), bit by bit: a few instructions per bit, and no table
 * in flash; at 115200 baud a byte takes over 11,000 cycles to arrive. */
static uint32_t crc32_byte(uint32_t crc, uint8_t byte)
{
    crc ^= byte;
    for (int bit = 0; bit < 8; bit++) {
        crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc;
}

static uint32_t read_u32(uint32_t *crc)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t byte = at_board_getc();
        if (crc) {
            *crc = crc32_byte(*crc, byte);
        }
        value |= (uint32_t)byte << (8 * i);
    }
    return value;
}

static uint32_t write_byte(uint32_t crc, uint8_t byte)
{
    at_board_putc(byte);
    return crc32_byte(crc, byte);
}

static uint32_t write_u32(uint32_t crc, uint32_t value)
{
    for (int i = 0; i < 4; i++) {
        crc = write_byte(crc, (uint8_t)(value >> (8 * i)));
    }
    return crc;
}

static uint32_t begin_answer(uint8_t type, uint32_t length)
{
    at_board_putc('A');
    at_board_putc('T');
    return write_u32(write_byte(0xFFFFFFFFu, type), length);
}

static void end_answer(uint32_t crc)
{
    (void)write_u32(0, ~crc);
}

static void answer_error(uint32_t code)
{
    end_answer(write_u32(begin_answer(ANSWER_ERROR, 4), code));
}

static void answer_info(void)
{
    uint32_t crc = begin_answer(ANSWER_INFO, 16);
    crc = write_u32(crc, AT_PROTOCOL_VERSION);
    crc = write_u32(crc, MODEL_INPUT_SIZE);
    crc = write_u32(crc, MODEL_OUTPUT_SIZE);
    end_answer(write_u32(crc, at_board_clock_hz()));
}

static void answer_invoke(void)
{
    at_board_timer_start();
    autotune_status = AUTOTUNE_ENTRY(AUTOTUNE_INPUT, AUTOTUNE_OUTPUT);
    uint64_t cycles = at_board_timer_cycles();
    uint32_t microseconds = at_board_timer_microseconds();
    uint32_t crc = begin_answer(ANSWER_INVOKE, 16 + MODEL_OUTPUT_SIZE);
    crc = write_u32(crc, (uint32_t)autotune_status);
    crc = write_u32(crc, (uint32_t)cycles);
    crc = write_u32(crc, (uint32_t)(cycles >> 32));
    crc = write_u32(crc, microseconds);
    for (uint32_t i = 0; i < MODEL_OUTPUT_SIZE; i++) {
        crc = write_byte(crc, (uint8_t)AUTOTUNE_OUTPUT[i]);
    }
    end_answer(crc);
}

/* One request: waits for the 'A' 'T' start, reads the rest, answers. A payload of the wrong
 * length is read to its end (and dropped) so the stream stays in step; a length larger than
 * any request is refused at once (the bytes that follow are skipped while looking for 'A' 'T'). */
static void serve_one(void)
{
    while (at_board_getc() != 'A') {
    }
    if (at_board_getc() != 'T') {
        return;
    }
    uint32_t crc = 0xFFFFFFFFu;
    uint8_t type = at_board_getc();
    crc = crc32_byte(crc, type);
    uint32_t length = read_u32(&crc);
    if (length > MODEL_INPUT_SIZE) {
        answer_error(ERROR_LENGTH);
        return;
    }
    int fits = type == REQUEST_INVOKE ? length == MODEL_INPUT_SIZE : length == 0;
    for (uint32_t i = 0; i < length; i++) {
        uint8_t byte = at_board_getc();
        crc = crc32_byte(crc, byte);
        if (fits) {
            AUTOTUNE_INPUT[i] = (int8_t)byte;
        }
    }
    if (read_u32(0) != ~crc) {
        answer_error(ERROR_CRC);
    } else if (type != REQUEST_INFO && type != REQUEST_INVOKE) {
        answer_error(ERROR_TYPE);
    } else if (!fits) {
        answer_error(ERROR_LENGTH);
    } else if (type == REQUEST_INFO) {
        answer_info();
    } else {
        answer_invoke();
    }
}

void at_protocol_serve(void)
{
    for (;;) {
        serve_one();
    }
}
