"""A LoRa radio model: who hears a transmission, and with what RSSI and SNR.

Log-distance path loss with log-normal shadowing (the usual urban model: exponent ~2.7,
sigma ~6 dB), a receiver sensitivity and a random loss on top (collisions, interference). A
gateway far away hears a device rarely and weakly, a near one almost always and strongly,
so several gateways hearing one press, each with its own RSSI, arises by itself.

Airtime, duty cycle and collisions between simultaneous packets are not modelled: the
simulator loads alertnet, not the spectrum. ``RadioModel.perfect`` makes every gateway hear
every packet (the ``flood`` scenario).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from firmware_sim.fleet import Geo, distance_m

__all__ = ["RadioModel", "Reception"]

_THERMAL_NOISE_DBM_HZ = -174.0
_MIN_DISTANCE_M = 1.0


@dataclass(frozen=True, slots=True)
class Reception:
    """One gateway's copy of a packet: signal strength and quality as its module reports."""

    rssi: int
    snr: float


@dataclass(frozen=True, slots=True)
class RadioModel:
    """Parameters of the channel between devices and gateways.

    Defaults: 14 dBm transmitters (REYAX RYLR896), 125 kHz bandwidth, sensitivity of
    spreading factor 10 (-132 dBm), 40 dB loss at the first metre, path-loss exponent 2.7.
    That gives a reliable range of a few kilometres in a city.
    """

    tx_power_dbm: float = 14.0
    loss_at_1m_db: float = 40.0
    path_loss_exponent: float = 2.7
    shadowing_sigma_db: float = 6.0
    sensitivity_dbm: float = -132.0
    bandwidth_hz: float = 125_000.0
    noise_figure_db: float = 6.0
    random_loss: float = 0.02
    #: Every gateway hears every packet (RSSI still falls with distance): the flood scenario.
    everyone_hears: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.random_loss < 1:
            raise ValueError("random_loss must be in [0, 1)")

    @classmethod
    def perfect(cls) -> RadioModel:
        return cls(random_loss=0.0, everyone_hears=True)

    @property
    def noise_floor_dbm(self) -> float:
        return _THERMAL_NOISE_DBM_HZ + 10 * math.log10(self.bandwidth_hz) + self.noise_figure_db

    def mean_rssi_dbm(self, distance: float) -> float:
        distance = max(distance, _MIN_DISTANCE_M)
        path_loss = self.loss_at_1m_db + 10 * self.path_loss_exponent * math.log10(distance)
        return self.tx_power_dbm - path_loss

    def hearing_probability(self, distance: float) -> float:
        """Chance that one packet over ``distance`` metres is received (shadowing and loss)."""
        if self.everyone_hears:
            return 1.0
        margin = self.mean_rssi_dbm(distance) - self.sensitivity_dbm
        if self.shadowing_sigma_db <= 0:
            above = 1.0 if margin >= 0 else 0.0
        else:
            above = 0.5 * (1 + math.erf(margin / (self.shadowing_sigma_db * math.sqrt(2))))
        return above * (1 - self.random_loss)

    def transmit(self, sender: Geo, receiver: Geo, rng: random.Random) -> Reception | None:
        """One packet from ``sender`` to ``receiver``: its reception, or None if lost."""
        rssi = self.mean_rssi_dbm(distance_m(sender, receiver))
        rssi += rng.gauss(0.0, self.shadowing_sigma_db) if self.shadowing_sigma_db > 0 else 0.0
        if not self.everyone_hears:
            if rssi < self.sensitivity_dbm or rng.random() < self.random_loss:
                return None
        # LoRa demodulates below the noise floor; modules report SNR down to about -20 dB.
        snr = max(-20.0, min(15.0, rssi - self.noise_floor_dbm + rng.gauss(0.0, 1.0)))
        return Reception(rssi=max(-164, min(0, round(rssi))), snr=round(snr, 1))
