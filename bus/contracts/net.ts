/**
 * Network contract (proto/net.proto, package `vmesh.net`). Frames are published on
 * `vmesh.net.<switch>.port.<port>.tx|rx`; join/leave are ops on `vmesh.net.<switch>`.
 *
 * @module
 */
import { defineOp, defineTopic, type Op, type Topic } from "../contract.ts";

/** `vmesh.net.Frame`: one Ethernet frame. */
export interface Frame {
  data: Uint8Array;
  seq?: number;
  /** More frames after `data`, in order (only to a peer that said `batch`). */
  more?: Uint8Array[];
}
/** `vmesh.net.PortJoin`. */
export interface PortJoin {
  switch: string;
  /** "52:54:00:12:34:56" form. */
  mac: string;
  portId: string;
  requestId?: string;
  /** The port reads `Frame.more` on rx. */
  batch?: boolean;
}
/** `vmesh.net.PortJoinReply`. */
export interface PortJoinReply {
  status?: number;
  mtu: number;
  /** Heartbeat bound: re-join within this many ms or be removed (0: not said). */
  agingMs?: number;
  /** The switch reads `Frame.more` on tx. */
  batch?: boolean;
}
/** `vmesh.net.PortLeave`. */
export interface PortLeave {
  switch: string;
  portId: string;
  requestId?: string;
}
/** `vmesh.net.PortLeaveReply`. */
export interface PortLeaveReply {
  status?: number;
}

/** Topic of frames on a port's tx or rx subject. */
export const frame: Topic<Frame> = defineTopic<Frame>("vmesh.net.Frame");

/** The ops of a switch. */
export const ops: {
  join: Op<PortJoin, PortJoinReply>;
  leave: Op<PortLeave, PortLeaveReply>;
} = {
  join: defineOp("join", "vmesh.net.PortJoin", "vmesh.net.PortJoinReply"),
  leave: defineOp("leave", "vmesh.net.PortLeave", "vmesh.net.PortLeaveReply"),
};
