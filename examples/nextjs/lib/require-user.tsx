"use client";
import { useRouter } from "next/navigation";
import { useEffect } from "react";
import type { User } from "./api";
import { useSession } from "./session";

/** The logged-in user; sends everyone else to /login. */
export function useRequiredUser(): User | null {
  const { user } = useSession();
  const router = useRouter();
  useEffect(() => {
    if (user === null) router.replace("/login");
  }, [user, router]);
  return user ?? null;
}
