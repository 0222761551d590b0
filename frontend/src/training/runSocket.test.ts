import { describe, expect, it } from "vitest";
import { backoffDelay, RunSocket, type RunEvent, type SocketLike, type SocketState } from "./runSocket";
import { addPoints, emptySeries, resumeStep, type RunSeries } from "./series";

/** A fake server socket: the test opens, sends and drops connections by hand. */
class FakeSocket implements SocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {}
  open() {
    this.onopen?.({});
  }
  send(event: unknown) {
    this.onmessage?.({ data: JSON.stringify(event) });
  }
  drop(code = 1006) {
    this.closed = true;
    this.onclose?.({ code });
  }
  close() {
    this.closed = true;
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const states: [SocketState, number | undefined][] = [];
  let series: RunSeries = emptySeries;
  const client = new RunSocket({
    runId: 7,
    lastStep: () => resumeStep(series),
    onEvent: (e: RunEvent) => {
      if (e.type === "training.metric") series = addPoints(series, "train", [e.payload]);
      if (e.type === "training.eval") series = addPoints(series, "eval", [e.payload]);
    },
    onState: (s, info) => states.push([s, info.delayMs]),
    url: (id, last) => `ws://x/ws/trainings/${id}/?last_step=${last}`,
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    random: () => 0.5, // no jitter
    schedule: (fn, ms) => {
      timers.push({ fn, ms });
      return timers.length;
    },
    cancelSchedule: () => undefined,
  });
  const fire = () => timers.shift()!.fn();
  return { client, sockets, timers, states, fire, series: () => series };
}

const metric = (step: number) => ({ type: "training.metric", payload: { id: step, step, values: { loss: 1 / step } } });

describe("backoffDelay", () => {
  it("grows exponentially up to the cap, with 75-125% jitter", () => {
    const b = { initialMs: 500, maxMs: 8000, factor: 2 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, b, () => 0.5))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(backoffDelay(0, b, () => 0)).toBe(375);
    expect(backoffDelay(0, b, () => 1)).toBe(625);
  });
});

describe("RunSocket", () => {
  it("reconnects with backoff and asks for the points after those it holds", () => {
    const h = harness();
    h.client.start();
    expect(h.sockets[0].url).toBe("ws://x/ws/trainings/7/?last_step=-1");
    h.sockets[0].open();
    for (const s of [1, 2, 3]) h.sockets[0].send(metric(s));
    h.sockets[0].drop();
    expect(h.timers.map((t) => t.ms)).toEqual([500]);
    h.fire();
    // one below the highest step: the server replays step 3 again and merging drops it
    expect(h.sockets[1].url).toBe("ws://x/ws/trainings/7/?last_step=2");
    // the server is down: failures back off further
    h.sockets[1].drop();
    h.fire();
    h.sockets[2].drop();
    expect(h.timers.map((t) => t.ms)).toEqual([2000]);
    h.fire();
    h.sockets[3].open();
    h.sockets[3].send(metric(3)); // replayed duplicate
    h.sockets[3].send(metric(4));
    expect(h.series().train.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    // a message resets the backoff
    h.sockets[3].drop();
    expect(h.timers.map((t) => t.ms)).toEqual([500]);
  });

  it("stops for good on 4403 and on stop()", () => {
    const h = harness();
    h.client.start();
    h.sockets[0].drop(4403);
    expect(h.timers).toHaveLength(0);
    expect(h.client.currentState).toBe("denied");

    const g = harness();
    g.client.start();
    g.sockets[0].open();
    g.client.stop();
    expect(g.sockets[0].closed).toBe(true);
    g.sockets[0].drop(); // a late close event after stop must not reconnect
    expect(g.timers).toHaveLength(0);
    expect(g.client.currentState).toBe("stopped");
  });

  it("reconnectNow replaces the connection at once", () => {
    const h = harness();
    h.client.start();
    h.sockets[0].open();
    h.sockets[0].send(metric(10));
    h.client.reconnectNow();
    expect(h.sockets[0].closed).toBe(true);
    expect(h.sockets).toHaveLength(2);
    expect(h.sockets[1].url).toBe("ws://x/ws/trainings/7/?last_step=9");
    h.sockets[0].drop(); // the old socket's close is ignored
    expect(h.timers).toHaveLength(0);
  });

  it("ignores messages that are not JSON", () => {
    const h = harness();
    h.client.start();
    h.sockets[0].onmessage?.({ data: "not json" });
    h.sockets[0].send(metric(1));
    expect(h.series().train).toHaveLength(1);
  });
});
