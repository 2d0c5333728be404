// Live updates, coalesced: however many notifications a burst brings, a view refetches at most
// once a second, and the last of a burst is never lost (it is applied when the second is up).

import { useEffect, useRef, useState } from "preact/hooks";

/** A counter to refetch on, and the function to call on each notification: the counter moves
 * at once when it has not moved for `ms`, else once when `ms` since its last move is up. */
export function useCoalesced(ms = 1000): [number, () => void] {
  const [count, setCount] = useState(0);
  const last = useRef(0);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => { if (pending.current) clearTimeout(pending.current); }, []);
  const notify = () => {
    if (pending.current) return;
    const wait = last.current + ms - Date.now();
    const move = () => { pending.current = null; last.current = Date.now(); setCount((c) => c + 1); };
    if (wait <= 0) move();
    else pending.current = setTimeout(move, wait);
  };
  return [count, notify];
}
