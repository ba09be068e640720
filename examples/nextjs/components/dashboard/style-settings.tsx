"use client";
// The streamer's own style and strength: on the go-live form (sent with
// POST /api/streams) and while live (PATCH /api/streams/current/settings,
// applied by the worker within a second). A viewer's request takes over
// for its time; then the streamer's style comes back.
import { useEffect, useRef, useState } from "react";

export type Look = { style: string; strength: number };

export function StyleSettings({
  styles,
  value,
  onChange,
  disabled = false,
}: {
  styles: string[];
  value: Look;
  /** Called at once for the style, after the slider rests for 300 ms for the strength. */
  onChange: (look: Look) => void;
  disabled?: boolean;
}) {
  const [strength, setStrength] = useState(value.strength);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const dragging = useRef(false);
  useEffect(() => {
    if (!dragging.current) setStrength(value.strength);
  }, [value.strength]);
  useEffect(() => () => clearTimeout(timer.current), []);
  return (
    <div className="row" data-testid="style-settings">
      <label>
        style{" "}
        <select
          value={value.style}
          disabled={disabled}
          onChange={(e) => onChange({ style: e.target.value, strength })}
          aria-label="Your style"
          data-testid="streamer-style"
        >
          <option value="">none</option>
          {styles.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
          {value.style && !styles.includes(value.style) && <option value={value.style}>{value.style}</option>}
        </select>
      </label>
      <label>
        strength{" "}
        <input
          type="range"
          min={0}
          max={1}
          step={0.05}
          value={strength}
          disabled={disabled}
          aria-label="Strength"
          data-testid="strength"
          onChange={(e) => {
            const next = Number(e.target.value);
            dragging.current = true;
            setStrength(next);
            clearTimeout(timer.current);
            timer.current = setTimeout(() => {
              dragging.current = false;
              onChange({ style: value.style, strength: next });
            }, 300);
          }}
        />{" "}
        <output data-testid="strength-value">{Math.round(strength * 100)} %</output>
      </label>
    </div>
  );
}
