"""ecomsend: copy TikTok Shop orders into Shopify, and link TikTok SKUs to Shopify variants."""

__version__ = "0.1.0"
