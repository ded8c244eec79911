// Typed events: `on(type, listener)` returns the function that removes that listener.
import { reportLater } from './web-socket.js';

export type Listener<T> = (event: T) => void;

/**
 * One list of listeners per event type. A listener that throws does not stop the others nor the
 * client's own bookkeeping: its exception is reported to the host (the console in a browser, an
 * uncaught exception in Node, as an EventEmitter listener's would be).
 */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener as Listener<never>);
    return () => {
      set.delete(listener as Listener<never>);
    };
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.listeners.get(type);
    if (set === undefined) return;
    for (const listener of [...set] as Listener<Events[K]>[]) {
      try {
        listener(event);
      } catch (error) {
        reportLater(error);
      }
    }
  }
}
