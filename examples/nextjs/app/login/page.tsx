"use client";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { api, ApiError } from "@/lib/api";
import { nextPath, useNextQuery } from "@/lib/next-path";
import { useSession } from "@/lib/session";

export default function Login() {
  const { setUser } = useSession();
  const router = useRouter();
  const next = useNextQuery();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError("");
    try {
      const { user } = await api.login(username, password);
      setUser(user);
      router.push(nextPath());
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <>
      <h1>Log in</h1>
      <form className="stack" onSubmit={submit}>
        <input placeholder="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} name="username" />
        <input placeholder="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} name="password" />
        <button className="primary" type="submit">
          Log in
        </button>
        {error && <p className="error">{error}</p>}
        <p>
          No account? <Link href={`/signup${next}`}>Sign up</Link>
        </p>
      </form>
    </>
  );
}
