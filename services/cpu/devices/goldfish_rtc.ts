/**
 * Goldfish real-time clock (QEMU hw/rtc/goldfish_rtc.c): nanoseconds since the Unix epoch,
 * derived from the VM clock plus the host's epoch time when the VM started, with one alarm.
 * As QEMU: a write to TIME_HIGH or TIME_LOW replaces that half of the current time at once
 * (either order works), ALARM_HIGH replaces the alarm's high half (read back at once) and
 * ALARM_LOW its low half and arms it; TIME_HIGH reads the half latched by the last TIME_LOW read.
 */
import type { MmioDevice, Stateful } from "../machine/mmio.ts";
import { TIMEBASE_HZ, type VmClock } from "../machine/clock.ts";

const TIME_LOW = 0x00, TIME_HIGH = 0x04, ALARM_LOW = 0x08, ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10, CLEAR_ALARM = 0x14, ALARM_STATUS = 0x18, CLEAR_INTERRUPT = 0x1c;
const TWO32 = 0x1_0000_0000;
const NS_PER_TICK = 1e9 / TIMEBASE_HZ;

/** Serializable RTC state. */
export interface GoldfishRtcState {
  /** Epoch nanoseconds at clock tick 0. */
  epochNsAtZero: number;
  /** The alarm, exact as written: high and low 32-bit halves. */
  alarmHigh: number;
  alarmLow: number;
  alarmRunning: boolean;
  irqEnabled: boolean;
  irqPending: boolean;
  timeHighLatch: number;
}

/** The RTC. */
export class GoldfishRtc implements MmioDevice, Stateful<GoldfishRtcState> {
  readonly name = "rtc";
  #s: GoldfishRtcState;

  constructor(
    private readonly clock: VmClock,
    private readonly setIrq: (level: boolean) => void,
    hostEpochNs: number = Date.now() * 1e6,
  ) {
    this.#s = {
      epochNsAtZero: hostEpochNs - clock.now() * NS_PER_TICK,
      alarmHigh: 0,
      alarmLow: 0,
      alarmRunning: false,
      irqEnabled: false,
      irqPending: false,
      timeHighLatch: 0,
    };
  }

  /** Current RTC time in ns since the epoch (a double: microsecond-exact). */
  nowNs(): number {
    return this.#s.epochNsAtZero + this.clock.now() * NS_PER_TICK;
  }

  /** Fires the alarm when due (call between instruction batches). */
  tick(): void {
    const s = this.#s;
    if (s.alarmRunning && this.nowNs() >= s.alarmHigh * TWO32 + s.alarmLow) {
      s.alarmRunning = false;
      s.irqPending = true;
      this.#update();
    }
  }

  #update(): void {
    this.setIrq(this.#s.irqPending && this.#s.irqEnabled);
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (size !== 4) return 0;
    const s = this.#s;
    switch (offset) {
      case TIME_LOW: {
        const t = this.nowNs();
        s.timeHighLatch = Math.floor(t / TWO32) >>> 0;
        return Math.floor(t % TWO32) >>> 0;
      }
      case TIME_HIGH:
        return s.timeHighLatch;
      case ALARM_LOW:
        return s.alarmLow;
      case ALARM_HIGH:
        return s.alarmHigh;
      case IRQ_ENABLED:
        return s.irqEnabled ? 1 : 0;
      case ALARM_STATUS:
        return s.alarmRunning ? 1 : 0;
    }
    return 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4) return;
    const s = this.#s;
    value >>>= 0;
    switch (offset) {
      case TIME_LOW: {
        const now = this.nowNs();
        s.epochNsAtZero += Math.floor(now / TWO32) * TWO32 + value - now;
        return;
      }
      case TIME_HIGH: {
        const now = this.nowNs();
        s.epochNsAtZero += value * TWO32 + (now % TWO32) - now;
        return;
      }
      case ALARM_LOW:
        s.alarmLow = value;
        s.alarmRunning = true;
        this.tick();
        return;
      case ALARM_HIGH:
        s.alarmHigh = value;
        return;
      case IRQ_ENABLED:
        s.irqEnabled = (value & 1) === 1;
        this.#update();
        return;
      case CLEAR_ALARM:
        s.alarmRunning = false;
        return;
      case CLEAR_INTERRUPT:
        s.irqPending = false;
        this.#update();
        return;
    }
  }

  save(): GoldfishRtcState {
    return { ...this.#s };
  }

  load(state: GoldfishRtcState): void {
    // Older states kept the alarm as one number (alarmNs).
    const old = state as GoldfishRtcState & { alarmNs?: number; alarmHighLatch?: number };
    const { alarmNs, alarmHighLatch: _latch, ...rest } = old;
    this.#s = alarmNs === undefined ? { ...rest } : {
      ...rest,
      alarmHigh: Math.floor(alarmNs / TWO32) >>> 0,
      alarmLow: Math.floor(alarmNs % TWO32) >>> 0,
    };
    this.#update();
  }
}
