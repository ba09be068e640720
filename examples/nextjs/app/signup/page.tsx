"use client";
// Signing up: each error under its field in plain words (the API names the
// field, `error.field`); a taken e-mail or username is said as such. Then
// logged in, and back where the visitor came from (?next=, e.g. a channel).
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { api, ApiError } from "@/lib/api";
import { nextPath, useNextQuery } from "@/lib/next-path";
import { useSession } from "@/lib/session";

type Field = "username" | "email" | "password";
type Errors = Partial<Record<Field | "form", string>>;

/** The browser's own checks, before asking the API: the same rules, said the same way. */
function check(form: Record<Field, string>): Errors {
  const errors: Errors = {};
  if (!/^[a-z0-9_]{3,32}$/.test(form.username)) errors.username = "Use 3 to 32 characters: lower-case letters, digits and _.";
  if (!/^[^\s@]+@[^\s@]+$/.test(form.email)) errors.email = "Enter an e-mail address, like you@example.org.";
  if ([...form.password].length < 10) errors.password = "Use at least 10 characters.";
  return errors;
}

function explain(err: unknown): Errors {
  if (!(err instanceof ApiError)) return { form: String(err) };
  if (err.code === "email_taken") return { email: "An account with this e-mail address exists already. Log in instead?" };
  if (err.code === "username_taken") return { username: "This username is taken: try another." };
  const field = err.field as Field | null;
  if (field === "username" || field === "email" || field === "password") return { [field]: err.message };
  return { form: err.message };
}

export default function Signup() {
  const { setUser } = useSession();
  const router = useRouter();
  const next = useNextQuery();
  const [form, setForm] = useState<Record<Field, string>>({ username: "", email: "", password: "" });
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const set = (key: Field) => (e: React.ChangeEvent<HTMLInputElement>) => {
    setForm({ ...form, [key]: e.target.value });
    setErrors((old) => ({ ...old, [key]: undefined }));
  };
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const local = check(form);
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      await api.register(form.username, form.email, form.password);
      const { user } = await api.login(form.username, form.password);
      setUser(user);
      router.push(nextPath());
    } catch (err) {
      setErrors(explain(err));
      setBusy(false);
    }
  };
  const field = (name: Field, input: React.ReactNode) => (
    <div className="field">
      {input}
      {errors[name] && (
        <p className="error field-error" data-testid={`error-${name}`} id={`error-${name}`}>
          {errors[name]}
        </p>
      )}
    </div>
  );
  return (
    <>
      <h1>Sign up</h1>
      <form className="stack" onSubmit={submit} noValidate>
        {field(
          "username",
          <input placeholder="username (3–32 of a–z, 0–9, _)" autoComplete="username" value={form.username} onChange={set("username")} name="username" aria-invalid={!!errors.username} aria-describedby="error-username" />,
        )}
        {field(
          "email",
          <input placeholder="email" type="email" autoComplete="email" value={form.email} onChange={set("email")} name="email" aria-invalid={!!errors.email} aria-describedby="error-email" />,
        )}
        {field(
          "password",
          <input placeholder="password (10 characters or more)" type="password" autoComplete="new-password" value={form.password} onChange={set("password")} name="password" aria-invalid={!!errors.password} aria-describedby="error-password" />,
        )}
        <button className="primary" type="submit" disabled={busy}>
          Create account
        </button>
        {errors.form && <p className="error" data-testid="error-form">{errors.form}</p>}
        <p className="muted">Your username is your channel&apos;s address: /{form.username || "username"}</p>
        <p>
          Have an account? <Link href={`/login${next}`}>Log in</Link>
        </p>
      </form>
    </>
  );
}
