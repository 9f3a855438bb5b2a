"""How task events are shown on the daemon's outputs (a terminal, a pipe, a file).

One sink per output, subscribed to the events a person sees (formatting.SHOWN):
styled where the output can show styles, plain otherwise, and with timestamps
(`+SECONDS `) when they are on, in a sink of its own so that the usual path does not
even test for them. `timestamps on|off` replaces every sink.
"""

from __future__ import annotations

from . import formatting
from .events import Event, EventBus, Sink
from .output import Output


class Presenters:
    """The sinks that show task events on OUTPUTS (the daemon's front-ends')."""

    def __init__(self, bus: EventBus, timestamps: bool) -> None:
        self.bus = bus
        self._timestamps = timestamps
        self._outputs: list[Output] = []
        self._sinks: list[Sink] = []

    def add(self, output: Output) -> None:
        self._outputs.append(output)
        self._present_to(output)

    @property
    def timestamps(self) -> bool:
        """Whether task lines and endings on screen start with `+SECONDS `."""
        return self._timestamps

    @timestamps.setter
    def timestamps(self, on: bool) -> None:
        if on == self._timestamps:
            return
        self._timestamps = on
        for sink in self._sinks:
            self.bus.unsubscribe(sink)
        self._sinks.clear()
        for output in self._outputs:
            self._present_to(output)

    def _present_to(self, output: Output) -> None:
        if getattr(output, "discards", False):
            return  # its stdout is /dev/null: nobody would see them
        stamps = self._timestamps
        sink: Sink
        if getattr(output, "styled", False):
            # A terminal bounds task events apart from replies (which it never drops).
            show = getattr(output, "event_line", output.line)

            def styled(event: Event) -> None:
                line = formatting.present(event, stamps)
                if line is not None:
                    show(line)

            sink = styled
        elif stamps:

            def stamped(event: Event) -> None:
                text = formatting.present_plain(event, True)
                if text is not None:
                    output.write(text + "\n")

            sink = stamped
        else:
            sink = formatting.plain_sink(output.write)
        self._sinks.append(sink)
        self.bus.subscribe(sink, formatting.SHOWN)
