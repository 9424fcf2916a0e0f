/** Forwarding cost of the switch core (no bus): learned unicast and broadcast flooding. */
import { VirtualSwitch } from "./switch.ts";

const sw = new VirtualSwitch("bench");
for (let i = 0; i < 8; i++) sw.join(`p${i}`, `52:54:00:00:00:0${i}`, () => true);
const unicast = new Uint8Array(1514);
unicast.set([0x52, 0x54, 0, 0, 0, 1, 0x52, 0x54, 0, 0, 0, 0, 0x08, 0x00]);
const broadcast = unicast.slice();
broadcast.fill(0xff, 0, 6);

Deno.bench("switch: 1000 learned unicast frames (1514 B)", () => {
  for (let i = 0; i < 1000; i++) sw.input("p0", unicast);
});

Deno.bench("switch: 1000 broadcast frames flooded to 7 ports", () => {
  for (let i = 0; i < 1000; i++) sw.input("p0", broadcast);
});
