/* RP2040 second-stage boot (boot2): sets up execute-in-place from QSPI flash in quad I/O
 * continuous-read mode (command EBh), then enters the application through its vector table at
 * 0x10000100.
 *
 * The bootrom copies the first 256 bytes of flash to SRAM, checks their CRC-32/MPEG-2 (the last
 * 4 bytes) and calls them with lr = 0. So this code is position independent (PC-relative
 * literals and branches only), at most 252 bytes, and uses the stack only.
 * device_runners/boot2.py assembles it, pads it and appends the CRC into
 * rp2040_boot2_padded.S, which the firmware links at 0x10000000; FLASH_CLKDIV and WAIT_CYCLES
 * come from there (its FlashInterface, which the XIP cache model of rp2040-sim reads too).
 *
 * Quad mode needs the flash's QE bit (status register 2, bit 1) set: if it reads anything else,
 * the two status registers are written with 01h (SR1 = 0, SR2 = QE), as W25Q-family flash
 * (the Pico's W25Q16JV) accepts. Then one EBh read with mode bits A0h puts the flash into
 * continuous-read mode, and the SSI is set to send only address + mode bits per XIP access.
 * Register offsets and fields: RP2040 datasheet 4.10.13 (SSI), 2.19.6.4 (PADS_QSPI).
 */
    .syntax unified
    .cpu cortex-m0plus
    .thumb

#ifndef FLASH_CLKDIV
#error "FLASH_CLKDIV (SSI clock divider: flash SCK = clk_sys / FLASH_CLKDIV) must be defined"
#endif
#ifndef WAIT_CYCLES
#error "WAIT_CYCLES (dummy clocks after address and mode bits) must be defined"
#endif

#define PADS_QSPI_BASE  0x40020000
#define PADS_SCLK       0x04
#define PADS_SD0        0x08
#define PADS_SD1        0x0c
#define PADS_SD2        0x10
#define PADS_SD3        0x14

#define XIP_SSI_BASE    0x18000000
#define SSI_CTRLR0      0x00
#define SSI_CTRLR1      0x04
#define SSI_SSIENR      0x08
#define SSI_BAUDR       0x14
#define SSI_SR          0x28
#define SSI_DR0         0x60
#define SSI_RX_SAMPLE_DLY 0xf0
#define SSI_SPI_CTRLR0  0xf4
#define SR_BUSY         0x01
#define SR_TFE          0x04

/* CTRLR0: DFS_32 [20:16] = bits per frame - 1, TMOD [9:8], SPI_FRF [22:21] */
#define CTRLR0_STD_8BIT_TXRX ((7 << 16) | (0 << 8))
#define CTRLR0_QUAD_32BIT_READ ((2 << 21) | (31 << 16) | (3 << 8))
/* SPI_CTRLR0: XIP_CMD [31:24], WAIT_CYCLES [15:11], INST_L [9:8], ADDR_L [5:2] (x4 bits),
 * TRANS_TYPE [1:0] (1: command serial, address quad; 2: both quad) */
#define ADDR_L          8      /* 24 address bits + 8 mode bits, in nibbles */
#define MODE_CONTINUOUS 0xa0   /* M7:4 = 1010b: the next read needs no EBh command */
#define SPI_CTRLR0_ENTER ((WAIT_CYCLES << 11) | (2 << 8) | (ADDR_L << 2) | 1)
#define SPI_CTRLR0_XIP   ((MODE_CONTINUOUS << 24) | (WAIT_CYCLES << 11) | (0 << 8) | (ADDR_L << 2) | 2)

#define CMD_WRITE_ENABLE 0x06
#define CMD_WRITE_STATUS 0x01
#define CMD_READ_STATUS1 0x05
#define CMD_READ_STATUS2 0x35
#define CMD_READ_QUAD_IO 0xeb
#define SR2_QE           0x02

    .section .text
    .global boot2_entry
    .type boot2_entry, %function
    .thumb_func
boot2_entry:
    push {lr}

    /* Pads: SCLK 8 mA with fast slew; SD0-SD3 without Schmitt triggers (less input delay). */
    ldr r3, =PADS_QSPI_BASE
    movs r0, #((2 << 4) | 1)
    str r0, [r3, #PADS_SCLK]
    ldr r0, [r3, #PADS_SD0]
    movs r1, #0x02
    bics r0, r1
    str r0, [r3, #PADS_SD0]
    str r0, [r3, #PADS_SD1]
    str r0, [r3, #PADS_SD2]
    str r0, [r3, #PADS_SD3]

    ldr r3, =XIP_SSI_BASE
    movs r1, #0
    str r1, [r3, #SSI_SSIENR]          /* disabled while configured */
    movs r1, #FLASH_CLKDIV
    str r1, [r3, #SSI_BAUDR]
    movs r1, #1
    movs r2, #SSI_RX_SAMPLE_DLY
    str r1, [r3, r2]                   /* sample one clk_sys late: data hold at high SCK */

    /* Standard SPI, 8-bit frames: make sure quad mode is enabled in the flash. */
    ldr r1, =CTRLR0_STD_8BIT_TXRX
    str r1, [r3, #SSI_CTRLR0]
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]
    movs r0, #CMD_READ_STATUS2
    bl read_status
    cmp r0, #SR2_QE
    beq quad_enabled
    movs r1, #CMD_WRITE_ENABLE
    str r1, [r3, #SSI_DR0]
    bl wait_ssi_ready
    ldr r1, [r3, #SSI_DR0]
    movs r1, #CMD_WRITE_STATUS
    str r1, [r3, #SSI_DR0]
    movs r0, #0
    str r0, [r3, #SSI_DR0]             /* SR1 */
    movs r0, #SR2_QE
    str r0, [r3, #SSI_DR0]             /* SR2 */
    bl wait_ssi_ready
    ldr r1, [r3, #SSI_DR0]
    ldr r1, [r3, #SSI_DR0]
    ldr r1, [r3, #SSI_DR0]
write_in_progress:
    movs r0, #CMD_READ_STATUS1
    bl read_status
    movs r1, #1                        /* BUSY */
    tst r0, r1
    bne write_in_progress
quad_enabled:
    movs r1, #0
    str r1, [r3, #SSI_SSIENR]

    /* One EBh read whose mode bits leave the flash in continuous-read mode. */
    ldr r1, =CTRLR0_QUAD_32BIT_READ
    str r1, [r3, #SSI_CTRLR0]
    movs r1, #0
    str r1, [r3, #SSI_CTRLR1]          /* one data frame */
    ldr r0, =(XIP_SSI_BASE + SSI_SPI_CTRLR0)
    ldr r1, =SPI_CTRLR0_ENTER
    str r1, [r0]
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]
    movs r1, #CMD_READ_QUAD_IO
    str r1, [r3, #SSI_DR0]
    movs r1, #MODE_CONTINUOUS          /* address 0, then the mode bits */
    str r1, [r3, #SSI_DR0]
    bl wait_ssi_ready

    /* From now on each XIP access sends address + mode bits only, in quad. */
    movs r1, #0
    str r1, [r3, #SSI_SSIENR]
    ldr r0, =(XIP_SSI_BASE + SSI_SPI_CTRLR0)
    ldr r1, =SPI_CTRLR0_XIP
    str r1, [r0]
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]

    /* Called by the bootrom (lr 0): enter the application; otherwise return to the caller. */
    pop {r0}
    cmp r0, #0
    beq enter_application
    bx r0
enter_application:
    ldr r0, =0x10000100                /* the application's vector table */
    ldr r1, =0xe000ed08                /* VTOR */
    str r0, [r1]
    ldmia r0, {r0, r1}                 /* initial stack pointer, reset handler */
    msr msp, r0
    bx r1

/* Waits until the SSI has sent everything and released chip select; r3 = SSI base. */
wait_ssi_ready:
    push {r0, r1, lr}
ssi_busy:
    ldr r1, [r3, #SSI_SR]
    movs r0, #SR_TFE
    tst r1, r0
    beq ssi_busy
    movs r0, #SR_BUSY
    tst r1, r0
    bne ssi_busy
    pop {r0, r1, pc}

/* r0 = a read-status command; returns the status byte in r0. */
read_status:
    push {r1, lr}
    str r0, [r3, #SSI_DR0]
    str r0, [r3, #SSI_DR0]             /* a dummy byte clocks the status out */
    bl wait_ssi_ready
    ldr r0, [r3, #SSI_DR0]             /* the byte received during the command */
    ldr r0, [r3, #SSI_DR0]
    pop {r1, pc}

    .ltorg
