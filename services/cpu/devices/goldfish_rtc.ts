/**
 * Goldfish real-time clock (QEMU hw/rtc/goldfish_rtc.c): nanoseconds since the Unix epoch,
 * derived from the VM clock plus the host's epoch time when the VM started, with one alarm.
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
  alarmNs: number;
  alarmRunning: boolean;
  irqEnabled: boolean;
  irqPending: boolean;
  timeHighLatch: number;
  alarmHighLatch: number;
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
      alarmNs: 0,
      alarmRunning: false,
      irqEnabled: false,
      irqPending: false,
      timeHighLatch: 0,
      alarmHighLatch: 0,
    };
  }

  /** Current RTC time in ns since the epoch (a double: microsecond-exact). */
  nowNs(): number {
    return this.#s.epochNsAtZero + this.clock.now() * NS_PER_TICK;
  }

  /** Fires the alarm when due (call between instruction batches). */
  tick(): void {
    const s = this.#s;
    if (s.alarmRunning && this.nowNs() >= s.alarmNs) {
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
        return Math.floor(s.alarmNs % TWO32) >>> 0;
      case ALARM_HIGH:
        return Math.floor(s.alarmNs / TWO32) >>> 0;
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
        // The guest sets the time: high half first (latched), then low.
        const want = s.timeHighLatch * TWO32 + value;
        s.epochNsAtZero += want - this.nowNs();
        return;
      }
      case TIME_HIGH:
        s.timeHighLatch = value;
        return;
      case ALARM_LOW:
        s.alarmNs = s.alarmHighLatch * TWO32 + value;
        s.alarmRunning = true;
        this.tick();
        return;
      case ALARM_HIGH:
        s.alarmHighLatch = value;
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
    this.#s = { ...state };
    this.#update();
  }
}
