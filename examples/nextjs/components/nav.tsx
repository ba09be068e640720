"use client";
import Link from "next/link";
import { api } from "@/lib/api";
import { useSession } from "@/lib/session";

export function Nav() {
  const { user } = useSession();
  // A full page load: nothing of the old session stays in memory, and no
  // page that needs a user redirects to /login on the way out.
  const logout = async () => {
    await api.logout().catch(() => {});
    window.location.assign("/");
  };
  return (
    <nav className="nav">
      <Link href="/" className="brand">
        Mirage
      </Link>
      {user && (
        <>
          <Link href="/dashboard">Dashboard</Link>
          <Link href="/dashboard/credits">Credits</Link>
          <Link href={`/${user.username}`}>My channel</Link>
          <Link href="/settings">Profile</Link>
          <span className="spacer" />
          <span className="muted">{user.username}</span>
          <button className="link" onClick={logout}>
            Log out
          </button>
        </>
      )}
      {user === null && (
        <>
          <span className="spacer" />
          <Link href="/login">Log in</Link>
          <Link href="/signup">Sign up</Link>
        </>
      )}
    </nav>
  );
}
