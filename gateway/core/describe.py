"""Human-readable one-line descriptions of Eddystone frames (no raw EIDs)."""

from __future__ import annotations

from eid import frames


def describe_tlm(frame: frames.TlmFrame) -> str:
    """Battery, temperature, PDU count and uptime of a plain (or decrypted) TLM frame."""
    battery = "no battery reading" if frame.battery_mv == 0 else f"battery {frame.battery_mv} mV"
    temperature = (
        "no temperature sensor"
        if frame.temperature_c is None
        else f"temperature {frame.temperature_c:.2f} degC"
    )
    uptime = frame.uptime_ds / 10
    return f"{battery}  {temperature}  adv_count {frame.adv_count}  uptime {uptime:.1f} s"


def describe(frame: frames.Frame) -> str:
    """One line: the frame kind, then its fields. An EID frame's identifier is not shown."""
    match frame:
        case frames.UidFrame():
            return (
                f"UID   tx {frame.tx_power} dBm  namespace {frame.namespace.hex()}  "
                f"instance {frame.instance.hex()}"
            )
        case frames.UrlFrame():
            return f"URL   tx {frame.tx_power} dBm  {frame.url}"
        case frames.TlmFrame():
            return f"TLM   {describe_tlm(frame)}"
        case frames.EtlmFrame():
            return "eTLM  encrypted telemetry"
        case frames.EidFrame():
            return f"EID   tx {frame.tx_power} dBm"
