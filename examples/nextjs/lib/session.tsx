"use client";
// Who is logged in. The session itself is the HttpOnly cookie miraged sets;
// this only remembers the user GET /api/me returned (undefined: not asked yet).
import { createContext, useCallback, useContext, useEffect, useState } from "react";
import { api, ApiError, type User } from "./api";

type Session = {
  user: User | null | undefined;
  setUser: (user: User | null) => void;
  refresh: () => Promise<void>;
};

const SessionContext = createContext<Session>({ user: undefined, setUser: () => {}, refresh: async () => {} });

export function SessionProvider({ children }: { children: React.ReactNode }) {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const refresh = useCallback(async () => {
    try {
      setUser(await api.me());
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setUser(null);
      else throw e;
    }
  }, []);
  useEffect(() => {
    refresh().catch(() => setUser(null));
  }, [refresh]);
  return <SessionContext.Provider value={{ user, setUser, refresh }}>{children}</SessionContext.Provider>;
}

export const useSession = () => useContext(SessionContext);
