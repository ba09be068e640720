"use client";
import { useEffect, useState } from "react";
import { api, ApiError } from "@/lib/api";
import { useRequiredUser } from "@/lib/require-user";
import { useSession } from "@/lib/session";

export default function Profile() {
  const user = useRequiredUser();
  const { setUser } = useSession();
  const [profile, setProfile] = useState({ display_name: "", bio: "" });
  const [passwords, setPasswords] = useState({ current: "", next: "" });
  const [message, setMessage] = useState("");
  useEffect(() => {
    if (user) setProfile({ display_name: user.display_name, bio: user.bio });
  }, [user]);
  if (!user) return null;
  const run = (action: () => Promise<string>) => async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      setMessage(await action());
    } catch (err) {
      setMessage(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <>
      <h1>Profile</h1>
      <div className="grid">
        <form
          className="card stack"
          onSubmit={run(async () => {
            setUser(await api.updateMe(profile));
            return "Profile saved.";
          })}
        >
          <h2>@{user.username}</h2>
          <p className="muted">{user.email}</p>
          <label>
            Display name
            <br />
            <input value={profile.display_name} onChange={(e) => setProfile({ ...profile, display_name: e.target.value })} />
          </label>
          <label>
            Bio
            <br />
            <textarea rows={3} value={profile.bio} onChange={(e) => setProfile({ ...profile, bio: e.target.value })} />
          </label>
          <button className="primary" type="submit">
            Save
          </button>
        </form>
        <form
          className="card stack"
          onSubmit={run(async () => {
            await api.changePassword(passwords.current, passwords.next);
            setPasswords({ current: "", next: "" });
            return "Password changed; your other sessions have ended.";
          })}
        >
          <h2>Password</h2>
          <input type="password" placeholder="current password" autoComplete="current-password" value={passwords.current} onChange={(e) => setPasswords({ ...passwords, current: e.target.value })} />
          <input type="password" placeholder="new password" autoComplete="new-password" value={passwords.next} onChange={(e) => setPasswords({ ...passwords, next: e.target.value })} />
          <button type="submit">Change password</button>
        </form>
      </div>
      {message && <p>{message}</p>}
    </>
  );
}
