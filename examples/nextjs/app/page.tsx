"use client";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useSession } from "@/lib/session";

export default function Home() {
  const { user } = useSession();
  const router = useRouter();
  const [channel, setChannel] = useState("");
  return (
    <>
      <h1>Mirage: live video, transformed by a diffusion model</h1>
      <div className="grid">
        <section className="card">
          <h2>Watch</h2>
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              if (channel.trim()) router.push(`/${channel.trim().toLowerCase()}`);
            }}
          >
            <input placeholder="username" value={channel} onChange={(e) => setChannel(e.target.value)} aria-label="Channel" />
            <button type="submit">Watch</button>
          </form>
        </section>
        <section className="card">
          <h2>Stream</h2>
          {user ? (
            <p>
              Go live from your camera on your <Link href="/dashboard">dashboard</Link>.
            </p>
          ) : (
            <p>
              <Link href="/signup">Sign up</Link> or <Link href="/login">log in</Link>, buy credits, and go live from your
              camera.
            </p>
          )}
        </section>
      </div>
    </>
  );
}
