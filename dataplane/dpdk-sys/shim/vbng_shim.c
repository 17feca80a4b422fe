/* Out-of-line copies of DPDK's static inline functions; see vbng_shim.h. */
#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>

#include "vbng_shim.h"

/* The Rust side defines RTE_ETH_RSS_L3_SRC_ONLY itself (bindgen cannot represent 1 << 63). */
_Static_assert(RTE_ETH_RSS_L3_SRC_ONLY == (1ULL << 63), "RTE_ETH_RSS_L3_SRC_ONLY moved");

uint16_t vbng_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
                           uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t vbng_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
                           uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *vbng_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int vbng_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void vbng_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void *vbng_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

char *vbng_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

uint16_t vbng_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t vbng_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

uint16_t vbng_pktmbuf_nb_segs(const struct rte_mbuf *m)
{
	return m->nb_segs;
}

struct rte_mbuf *vbng_pktmbuf_next(const struct rte_mbuf *m)
{
	return m->next;
}

uint16_t vbng_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

const uint8_t *vbng_pktmbuf_segment(const struct rte_mbuf *m, uint16_t *len,
                                    struct rte_mbuf **next)
{
	*len = m->data_len;
	*next = m->next;
	return rte_pktmbuf_mtod(m, const uint8_t *);
}

struct rte_mbuf *vbng_pktmbuf_alloc_copy(struct rte_mempool *mp, const uint8_t *data,
                                         uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
	char *dst;

	if (unlikely(m == NULL))
		return NULL;
	dst = rte_pktmbuf_append(m, len);
	if (unlikely(dst == NULL)) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	rte_memcpy(dst, data, len);
	return m;
}

int vbng_errno(void)
{
	return rte_errno;
}

unsigned int vbng_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t vbng_rdtsc(void)
{
	return rte_rdtsc();
}
