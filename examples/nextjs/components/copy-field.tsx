"use client";
import { useState } from "react";

/** Copies |text|; the clipboard API needs a secure context, so a plain-HTTP page falls back to a selection. */
async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

/** A read-only value with a copy button; a secret one is hidden until asked. */
export function CopyField({ label, value, secret = false, testId }: { label: string; value: string; secret?: boolean; testId: string }) {
  const [copied, setCopied] = useState(false);
  const [shown, setShown] = useState(!secret);
  return (
    <label className="copy-field">
      <span className="copy-label">{label}</span>
      <input readOnly type={shown ? "text" : "password"} value={value} onFocus={(e) => e.target.select()} data-testid={testId} />
      <span className="row">
        {secret && (
          <button type="button" onClick={() => setShown((s) => !s)}>
            {shown ? "Hide" : "Show"}
          </button>
        )}
        <button
          type="button"
          onClick={async () => {
            setCopied(await copy(value));
            setTimeout(() => setCopied(false), 1500);
          }}
          data-testid={`${testId}-copy`}
        >
          {copied ? "Copied" : "Copy"}
        </button>
      </span>
    </label>
  );
}
