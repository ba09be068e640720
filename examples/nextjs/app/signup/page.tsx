"use client";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { api, ApiError } from "@/lib/api";
import { nextPath } from "@/lib/next-path";
import { useSession } from "@/lib/session";

export default function Signup() {
  const { setUser } = useSession();
  const router = useRouter();
  const [form, setForm] = useState({ username: "", email: "", password: "" });
  const [error, setError] = useState("");
  const set = (key: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm({ ...form, [key]: e.target.value });
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError("");
    try {
      await api.register(form.username, form.email, form.password);
      const { user } = await api.login(form.username, form.password);
      setUser(user);
      router.push(nextPath());
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <>
      <h1>Sign up</h1>
      <form className="stack" onSubmit={submit}>
        <input placeholder="username (3–32 of a–z, 0–9, _)" autoComplete="username" value={form.username} onChange={set("username")} name="username" />
        <input placeholder="email" type="email" autoComplete="email" value={form.email} onChange={set("email")} name="email" />
        <input placeholder="password (10 characters or more)" type="password" autoComplete="new-password" value={form.password} onChange={set("password")} name="password" />
        <button className="primary" type="submit">
          Create account
        </button>
        {error && <p className="error">{error}</p>}
        <p className="muted">Your username is your channel&apos;s address: /{form.username || "username"}</p>
        <p>
          Have an account? <Link href="/login">Log in</Link>
        </p>
      </form>
    </>
  );
}
